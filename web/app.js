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

const state = { tasks: [], common: [], limits: null };
const $ = (selector, root = document) => root.querySelector(selector);
// Result cards kept on the page; older ones are removed (and their object URLs revoked).
// `data-keep` on #results overrides it.
const KEEP_CARDS = 10;
// The object URLs each card holds (photo, result, downloads), revoked when it goes.
const cardUrls = new WeakMap();

// An exclusive lower bound has no HTML attribute: check it by hand.
function checkRange(input) {
  const value = input.value === '' ? null : Number(input.value);
  let message = '';
  if (value !== null && input.dataset.minExclusive === 'true' && value <= Number(input.min)) {
    message = `Must be more than ${input.min}.`;
  }
  input.setCustomValidity(message);
}

function formatBytes(n) {
  const units = [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]];
  for (const [unit, size] of units) {
    if (n >= size) return `${Number((n / size).toFixed(1))} ${unit}`;
  }
  return `${n} bytes`;
}

function showLimits(limits) {
  const span = $('#limits');
  if (!limits || !limits.max_body_bytes) { span.hidden = true; return; }
  const parts = [formatBytes(limits.max_body_bytes)];
  if (limits.max_pixels) parts.push(`${Number((limits.max_pixels / 1e6).toFixed(1))} megapixels`);
  if (limits.max_side) parts.push(`${limits.max_side} pixels a side`);
  const last = parts.pop();
  span.textContent = ` · up to ${parts.length ? `${parts.join(', ')} and ${last}` : last} each`;
  span.hidden = false;
}

function track(card, blob) {
  const url = URL.createObjectURL(blob);
  cardUrls.get(card).push(url);
  return url;
}

function removeCard(card) {
  for (const url of cardUrls.get(card) || []) URL.revokeObjectURL(url);
  cardUrls.delete(card);
  card.remove();
}

function newCard(title) {
  const card = $('#card').content.firstElementChild.cloneNode(true);
  cardUrls.set(card, []);
  $('.title', card).textContent = title;
  $('.remove', card).addEventListener('click', () => {
    const next = card.nextElementSibling || card.previousElementSibling;
    removeCard(card);
    // Keep keyboard focus on the page rather than losing it with the removed button.
    (next ? $('.remove', next) : $('#choose')).focus();
  });
  const results = $('#results');
  results.prepend(card);
  const keep = Number(results.dataset.keep) || KEEP_CARDS;
  [...results.querySelectorAll('article.card')].slice(keep).forEach(removeCard);
  return card;
}

function base64Blob(text, type) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return new Blob([bytes], { type });
}

function fail(card, message) {
  const status = $('.status', card);
  status.textContent = message;
  status.classList.add('error');
  card.dataset.state = 'error';
}

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
      if (option.kind === 'boolean') {
        // Ticked as the server's default; the form always sends the box's state.
        input.type = 'checkbox';
        input.checked = option.default === 'true';
      } else {
        input.placeholder = option.default;
        if (option.kind === 'number' || option.kind === 'integer') {
          input.type = 'number';
          input.step = option.kind === 'integer' ? '1' : 'any';
          // The bounds the server validates with, from the option's table entry.
          if (typeof option.minimum === 'number' && typeof option.maximum === 'number') {
            input.min = String(option.minimum);
            input.max = String(option.maximum);
            input.dataset.minExclusive = String(option.exclusive_minimum === true);
            input.addEventListener('input', () => checkRange(input));
          }
        }
      }
    }
    input.title = option.description;
    input.name = option.name;
    input.dataset.kind = option.kind;
    label.append(input);
    box.append(label);
  }
}

function query() {
  const params = new URLSearchParams();
  for (const input of document.querySelectorAll('#options input, #options select')) {
    if (input.type === 'checkbox') params.set(input.name, input.checked ? 'true' : 'false');
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

// The first option whose value the page can already tell is out of range, as a sentence.
function optionProblem() {
  for (const input of document.querySelectorAll('#options input[type="number"]')) {
    checkRange(input);
    if (!input.checkValidity()) return `${input.name}: ${input.validationMessage}`;
  }
  return null;
}

const stem = (name) => (name || 'photo').replace(/\.[^.]+$/, '');

function saveLink(card, selector, url, filename) {
  const link = $(selector, card);
  link.href = url;
  link.download = filename;
  link.hidden = false;
}

async function process(file) {
  const task = $('#task').value;
  const card = newCard(`${file.name || 'pasted photo'} · ${task}`);
  const status = $('.status', card);
  const bar = $('progress', card);
  const limit = state.limits && state.limits.max_body_bytes;
  if (limit && file.size > limit) {
    fail(card, `${ERROR_SENTENCES.payload_too_large} (${formatBytes(file.size)}; the limit is ${formatBytes(limit)})`);
    return;
  }
  const problem = optionProblem();
  if (problem) {
    fail(card, `${ERROR_SENTENCES.bad_option} (${problem})`);
    return;
  }
  status.textContent = 'Uploading…';
  try {
    const response = await post(`/v1/${task}${query()}`, file, (fraction) => {
      bar.value = Math.round(fraction * 50);
      if (fraction >= 1) status.textContent = 'Working on it…';
    });
    bar.value = 100;
    if (response.status !== 200 || !response.body) {
      fail(card, humanError(response.status, response.body));
      return;
    }
    if (!card.isConnected) return; // removed while it was running
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
    const name = `${stem(file.name)}-${task.replace('/', '-')}`;
    // The whole answer, base64 fields included, as the API returned it.
    const jsonBlob = new Blob([JSON.stringify(body, null, 2)], { type: 'application/json' });
    saveLink(card, '.save-json', track(card, jsonBlob), `${name}.json`);
    if (typeof body.mask === 'string') {
      saveLink(card, '.save-mask', track(card, base64Blob(body.mask, 'image/png')), `${name}-mask.png`);
    }
    if (body.image) {
      const mime = body.image_format === 'jpg' ? 'image/jpeg' : 'image/png';
      const originalUrl = track(card, file);
      const resultUrl = track(card, base64Blob(body.image, mime));
      $('.original', card).src = originalUrl;
      $('.result', card).src = resultUrl;
      $('.under', card).src = originalUrl;
      $('.over', card).src = resultUrl;
      $('.compare', card).hidden = false;
      saveLink(card, '.download', resultUrl, `${name}.${body.image_format || 'png'}`);
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
    fail(card, error.message);
  }
}

async function processAll(files) {
  for (const file of files) await process(file);
}

// The camera: frames from getUserMedia go as JPEG over the task's WebSocket
// (`/v1/stream/{task}`), one at a time (the next leaves when the last one's answer is back,
// so the server is never flooded), and each answer's frame is shown beside the camera.
const camera = { media: null, socket: null, running: false, shown: null, times: [] };

function cameraSummary(json) {
  if (json.person_count !== undefined) return `${json.person_count} person(s)`;
  if (json.count !== undefined) return `${json.count} face(s)`;
  return '';
}

async function startCamera() {
  const status = $('#camera-status');
  let media;
  try {
    media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (error) {
    status.textContent = `No camera: ${error.message}`;
    return;
  }
  camera.media = media;
  const video = $('#camera-video');
  video.srcObject = media;
  await video.play();
  $('.camera-view').hidden = false;
  $('#camera-start').hidden = true;
  $('#camera-stop').hidden = false;
  const params = new URLSearchParams(query().slice(1));
  params.delete('format');
  const text = params.toString();
  const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
  const task = $('#task').value;
  // A browser cannot put headers on a WebSocket's request: the key goes as a subprotocol,
  // `percept.bearer.` and its UTF-8 bytes in hex, beside `percept`, which the server answers.
  const key = sessionStorage.getItem('percept-api-key');
  const protocols = key
    ? ['percept', `percept.bearer.${Array.from(new TextEncoder().encode(key), (b) => b.toString(16).padStart(2, '0')).join('')}`]
    : [];
  const socket = new WebSocket(`${scheme}://${window.location.host}/v1/stream/${task}${text ? `?${text}` : ''}`, protocols);
  socket.binaryType = 'blob';
  camera.socket = socket;
  const canvas = document.createElement('canvas');
  const send = () => {
    if (!camera.running || socket.readyState !== WebSocket.OPEN) return;
    canvas.width = video.videoWidth || 640;
    canvas.height = video.videoHeight || 480;
    canvas.getContext('2d').drawImage(video, 0, 0, canvas.width, canvas.height);
    canvas.toBlob((blob) => { if (blob && camera.running) socket.send(blob); }, 'image/jpeg', 0.8);
  };
  let last = null;
  const done = () => {
    const now = performance.now();
    camera.times = [...camera.times.filter((t) => now - t < 2000), now];
    const fps = camera.times.length > 1
      ? ((camera.times.length - 1) * 1000) / (now - camera.times[0]) : 0;
    status.textContent = `${task}: ${fps.toFixed(1)} frames/s · ${last ? cameraSummary(last) : ''}`;
    status.dataset.frames = String(Number(status.dataset.frames || 0) + 1);
    send();
  };
  socket.addEventListener('open', () => { camera.running = true; send(); });
  socket.addEventListener('message', (event) => {
    if (typeof event.data === 'string') {
      const json = JSON.parse(event.data);
      if (json.error) {
        status.textContent = json.error.message;
        send();
        return;
      }
      last = json;
      if (!json.image) done();
      return;
    }
    if (camera.shown) URL.revokeObjectURL(camera.shown);
    camera.shown = URL.createObjectURL(event.data);
    $('#camera-result').src = camera.shown;
    done();
  });
  socket.addEventListener('close', (event) => {
    if (camera.running && event.code !== 1000) status.textContent = `The stream closed (${event.code}).`;
    stopCamera();
  });
}

function stopCamera() {
  camera.running = false;
  if (camera.socket) camera.socket.close(1000);
  if (camera.media) for (const t of camera.media.getTracks()) t.stop();
  camera.socket = null;
  camera.media = null;
  $('#camera-start').hidden = false;
  $('#camera-stop').hidden = true;
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
    state.limits = body.limits || null;
  } catch (_) {
    state.tasks = [{ name: 'inspect', summary: '', options: [] }];
  }
  showLimits(state.limits);
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
  const chooser = $('#file');
  chooser.addEventListener('change', () => {
    const files = [...chooser.files];
    chooser.value = ''; // choosing the same file again is a new upload
    processAll(files);
  });
  // A real button, so Tab reaches it and Enter/Space open the file chooser.
  $('#choose').addEventListener('click', () => chooser.click());
  for (const type of ['dragenter', 'dragover']) {
    drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add('over'); });
  }
  for (const type of ['dragleave', 'drop']) {
    drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.remove('over'); });
  }
  drop.addEventListener('drop', (e) => processAll([...e.dataTransfer.files]));
  // Paste a photo (a screenshot, an image copied from another page): the first image wins;
  // a paste without one (text into an option field) is left alone.
  document.addEventListener('paste', (e) => {
    const items = e.clipboardData ? [...e.clipboardData.items] : [];
    const item = items.find((i) => i.kind === 'file' && i.type.startsWith('image/'));
    const file = item && item.getAsFile();
    if (!file) return;
    e.preventDefault();
    processAll([file]);
  });
  $('#camera-start').addEventListener('click', startCamera);
  $('#camera-stop').addEventListener('click', stopCamera);
  document.body.dataset.ready = 'true';
}

init();
