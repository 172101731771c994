// percept's page: pick a task, drop photos, see original and result side by side.
// No build step and no external resources, so it works offline.
'use strict';

const ERROR_SENTENCES = {
  invalid_image: 'This file is not a photo percept can read (it may be damaged or cut short).',
  bad_option: 'One of the options is not valid.',
  unsupported_media_type: 'That kind of upload is not supported.',
  unauthorized: 'This server needs an API key; reload the page to enter it.',
  payload_too_large: 'The file is larger than the server accepts.',
  image_too_large: 'The photo has more pixels than the server accepts.',
  queue_full: 'The server is busy right now. Try again in a moment.',
  timeout: 'The server took too long on this photo.',
  shutting_down: 'The server is restarting. Try again in a moment.',
  unavailable: 'The job store is unreachable right now. Try again in a moment.',
  not_found: 'That task is not available on this server.',
  internal: 'Something went wrong on the server.',
};

const state = { tasks: [], common: [] };
const $ = (selector, root = document) => root.querySelector(selector);

function humanError(status, body) {
  const code = body && body.error && body.error.code;
  const sentence = ERROR_SENTENCES[code] || `The server answered ${status}.`;
  const detail = body && body.error && body.error.message;
  return detail ? `${sentence} (${detail})` : sentence;
}

function renderOptions() {
  const task = state.tasks.find((t) => t.name === $('#task').value);
  $('#task-summary').textContent = task ? task.summary : '';
  const box = $('#options');
  box.replaceChildren();
  for (const option of (task ? task.options : [])) {
    const label = document.createElement('label');
    label.title = option.description;
    label.append(option.name);
    let input;
    if (option.choices && option.choices.length) {
      // A menu of the accepted values; the empty entry leaves the server's default.
      input = document.createElement('select');
      const none = document.createElement('option');
      none.value = '';
      none.textContent = `(${option.default})`;
      input.append(none);
      for (const choice of option.choices) {
        const item = document.createElement('option');
        item.value = choice;
        item.textContent = choice;
        input.append(item);
      }
    } else {
      input = document.createElement('input');
      input.placeholder = option.default;
      if (option.kind === 'boolean') input.type = 'checkbox';
      else if (option.kind === 'number' || option.kind === 'integer') {
        input.type = 'number';
        input.step = option.kind === 'integer' ? '1' : 'any';
      }
    }
    input.name = option.name;
    input.dataset.kind = option.kind;
    label.append(input);
    box.append(label);
  }
}

function query() {
  const params = new URLSearchParams();
  for (const input of document.querySelectorAll('#options input, #options select')) {
    if (input.type === 'checkbox') { if (input.checked) params.set(input.name, 'true'); }
    else if (input.value !== '') params.set(input.name, input.value);
  }
  if ($('#jpeg').checked) params.set('format', 'jpeg');
  const text = params.toString();
  return text ? `?${text}` : '';
}

function post(url, file, onUpload) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    xhr.setRequestHeader('Accept', 'application/json');
    const key = sessionStorage.getItem('percept-api-key');
    if (key) xhr.setRequestHeader('Authorization', `Bearer ${key}`);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onUpload(e.loaded / e.total); };
    xhr.upload.onload = () => onUpload(1);
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      resolve({ status: xhr.status, body, header: (name) => xhr.getResponseHeader(name) });
    };
    xhr.onerror = () => reject(new Error('The server could not be reached.'));
    const form = new FormData();
    form.append('image', file, file.name);
    xhr.send(form);
  });
}

// The legend lists only the labels this photo has (all of them when the answer has no segments).
function showLegend(card, palette, segments) {
  const legend = $('.legend', card);
  if (!palette) return;
  const present = segments ? new Set(segments.map((s) => s.label)) : null;
  for (const entry of palette) {
    if (entry.index === 0 || (present && !present.has(entry.label))) continue;
    const span = document.createElement('span');
    span.textContent = entry.label;
    span.style.setProperty('--swatch', `rgb(${entry.color.join(',')})`);
    legend.append(span);
  }
  legend.hidden = false;
}

async function process(file) {
  const card = $('#card').content.firstElementChild.cloneNode(true);
  $('#results').prepend(card);
  const task = $('#task').value;
  $('.title', card).textContent = `${file.name} · ${task}`;
  const status = $('.status', card);
  const bar = $('progress', card);
  const originalUrl = URL.createObjectURL(file);
  status.textContent = 'Uploading…';
  try {
    const response = await post(`/v1/${task}${query()}`, file, (fraction) => {
      bar.value = Math.round(fraction * 50);
      if (fraction >= 1) status.textContent = 'Working on it…';
    });
    bar.value = 100;
    if (response.status !== 200 || !response.body) {
      status.textContent = humanError(response.status, response.body);
      status.classList.add('error');
      card.dataset.state = 'error';
      return;
    }
    const body = response.body;
    const json = { ...body };
    for (const key of ['image', 'mask']) {
      if (typeof json[key] === 'string') json[key] = `<${json[key].length} base64 characters>`;
    }
    $('.json pre', card).textContent = JSON.stringify(json, null, 2);
    $('.json', card).hidden = false;
    const timing = ['x-queue-time', 'x-compute-time', 'x-total-time']
      .map((h) => [h.replace('x-', '').replace('-time', ''), response.header(h)])
      .filter(([, v]) => v)
      .map(([k, v]) => `${k} ${Number(v).toFixed(0)} ms`);
    $('.timing', card).textContent = timing.join(' · ');
    $('.actions', card).hidden = false;
    status.textContent = 'Done.';
    if (body.image) {
      const mime = body.image_format === 'jpg' ? 'image/jpeg' : 'image/png';
      const resultUrl = `data:${mime};base64,${body.image}`;
      $('.original', card).src = originalUrl;
      $('.result', card).src = resultUrl;
      $('.under', card).src = originalUrl;
      $('.over', card).src = resultUrl;
      $('.compare', card).hidden = false;
      const link = $('.download', card);
      link.href = resultUrl;
      link.download = `${file.name.replace(/\.[^.]+$/, '')}-${task.replace('/', '-')}.${body.image_format || 'png'}`;
      const slider = $('.slider input', card);
      slider.addEventListener('input', () => {
        $('.over', card).style.clipPath = `inset(0 ${100 - slider.value}% 0 0)`;
      });
      $('.toggle', card).addEventListener('click', () => {
        const sliding = $('.slider', card).hidden;
        $('.slider', card).hidden = !sliding;
        $('.compare', card).hidden = sliding;
        $('.toggle', card).textContent = sliding ? 'Side by side' : 'Slider view';
      });
    } else {
      $('.download', card).hidden = true;
      $('.toggle', card).hidden = true;
    }
    showLegend(card, body.palette, body.segments);
    card.dataset.state = 'done';
  } catch (error) {
    status.textContent = error.message;
    status.classList.add('error');
    card.dataset.state = 'error';
  }
}

async function processAll(files) {
  for (const file of files) await process(file);
}

async function init() {
  const select = $('#task');
  try {
    const headers = {};
    const key = sessionStorage.getItem('percept-api-key');
    if (key) headers.Authorization = `Bearer ${key}`;
    const response = await fetch('/v1/tasks', { headers });
    if (response.status === 401) {
      // The server was started with an API key: ask for it once per browser session.
      const entered = window.prompt('This percept server needs an API key:');
      if (entered) {
        sessionStorage.setItem('percept-api-key', entered.trim());
        window.location.reload();
        return;
      }
    }
    const body = await response.json();
    state.tasks = body.tasks;
  } catch (_) {
    state.tasks = [{ name: 'inspect', summary: '', options: [] }];
  }
  for (const task of state.tasks) {
    const option = document.createElement('option');
    option.value = task.name;
    option.textContent = task.name;
    select.append(option);
  }
  const preferred = state.tasks.find((t) => t.name === 'art/pencil');
  if (preferred) select.value = preferred.name;
  select.addEventListener('change', renderOptions);
  renderOptions();

  const drop = $('#drop');
  $('#file').addEventListener('change', (e) => processAll([...e.target.files]));
  for (const type of ['dragenter', 'dragover']) {
    drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add('over'); });
  }
  for (const type of ['dragleave', 'drop']) {
    drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.remove('over'); });
  }
  drop.addEventListener('drop', (e) => processAll([...e.dataTransfer.files]));
  document.body.dataset.ready = 'true';
}

init();
