// The page in a real browser (Debian's headless Chromium driven by playwright-core) against
// a real `percept serve`: upload real photos for every task, check the results render and
// differ from the input, and that a broken file shows a human error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const binary = process.env.PERCEPT_BIN || path.join(root, 'target/debug/percept');
const chromiumPath = process.env.PERCEPT_CHROMIUM || '/usr/bin/chromium';
const shots = path.join(root, 'test-output/web');
const photo = path.join(root, 'tests/data/group3_costumes.jpg');

let server;
let browser;
let base;

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
    probe.on('error', reject);
  });
}

async function waitHealthy(url) {
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${url}/healthz`);
      if (response.ok) return;
    } catch (_) { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('percept did not become healthy');
}

before(async () => {
  assert.ok(existsSync(binary), `build percept first: ${binary}`);
  mkdirSync(shots, { recursive: true });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(binary, ['serve', '--addr', `127.0.0.1:${port}`], {
    env: { ...process.env, PERCEPT_LOG: 'warn' },
    stdio: 'ignore',
  });
  await waitHealthy(base);
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill('SIGTERM');
});

async function openPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('request', (r) => {
    if (!r.url().startsWith(base) && !r.url().startsWith('data:') && !r.url().startsWith('blob:')) {
      problems.push(`request outside the server: ${r.url()}`);
    }
  });
  await page.goto(base);
  await page.waitForSelector('body[data-ready="true"]');
  return { page, problems };
}

async function upload(page, task, file) {
  await page.selectOption('#task', task);
  return send(page, file);
}

// Uploads with the task and options already chosen on the page.
async function send(page, file) {
  const before = await page.locator('article.card').count();
  await page.setInputFiles('#file', file);
  const card = page.locator('article.card').first();
  await page.waitForFunction((n) => {
    const cards = document.querySelectorAll('article.card');
    return cards.length > n && cards[0].dataset.state;
  }, before, { timeout: 60000 });
  return card;
}

// Fraction of sampled pixels that differ clearly between two same-size images on the page.
async function changedFraction(card) {
  return card.evaluate(async (el) => {
    const load = (img) => (img.complete ? Promise.resolve() : new Promise((r) => { img.onload = r; }));
    const a = el.querySelector('img.original');
    const b = el.querySelector('img.result');
    await Promise.all([load(a), load(b)]);
    const pixels = (img) => {
      const canvas = document.createElement('canvas');
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const ctx = canvas.getContext('2d');
      ctx.drawImage(img, 0, 0);
      return ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    };
    if (a.naturalWidth !== b.naturalWidth || a.naturalHeight !== b.naturalHeight) return -1;
    const pa = pixels(a);
    const pb = pixels(b);
    let changed = 0;
    let total = 0;
    for (let i = 0; i < pa.length; i += 4 * 17) {
      total += 1;
      const d = Math.abs(pa[i] - pb[i]) + Math.abs(pa[i + 1] - pb[i + 1]) + Math.abs(pa[i + 2] - pb[i + 2]);
      if (d > 36) changed += 1;
    }
    return changed / total;
  });
}

test('the page lists the tasks and loads nothing from outside', async () => {
  const { page, problems } = await openPage();
  const tasks = await page.locator('#task option').allTextContents();
  assert.ok(tasks.includes('inspect'), tasks.join(','));
  for (const style of ['pencil', 'pencil-color', 'oil', 'watercolor', 'stylize', 'cartoon']) {
    assert.ok(tasks.includes(`art/${style}`), `art/${style} missing from ${tasks}`);
  }
  await page.selectOption('#task', 'art/oil');
  assert.equal(await page.locator('#options input[name="size"]').count(), 1);
  await page.screenshot({ path: path.join(shots, 'page.png'), fullPage: true });
  assert.deepEqual(problems, []);
  await page.context().close();
});

for (const style of ['pencil', 'pencil-color', 'oil', 'watercolor', 'stylize', 'cartoon']) {
  test(`art/${style}: a real photo comes back changed, same size, side by side`, async () => {
    const { page, problems } = await openPage();
    const card = await upload(page, `art/${style}`, photo);
    assert.equal(await card.getAttribute('data-state'), 'done', await card.locator('.status').textContent());
    assert.ok(await card.locator('.compare').isVisible());
    const fraction = await changedFraction(card);
    assert.ok(fraction > 0.1, `only ${fraction} of pixels changed`);
    assert.match(await card.locator('.timing').textContent(), /compute \d+ ms/);
    assert.match(await card.locator('a.download').getAttribute('download'), /group3_costumes-art-/);
    await card.locator('button.toggle').click();
    assert.ok(await card.locator('.slider').isVisible());
    await card.screenshot({ path: path.join(shots, `art-${style}.png`) });
    assert.deepEqual(problems, []);
    await page.context().close();
  });
}

test('anonymize hides the faces of a real group photo', async () => {
  const { page, problems } = await openPage();
  const card = await upload(page, 'anonymize', photo);
  assert.equal(await card.getAttribute('data-state'), 'done', await card.locator('.status').textContent());
  const json = JSON.parse(await card.locator('.json pre').textContent());
  assert.equal(json.count, 3);
  const fraction = await changedFraction(card);
  assert.ok(fraction > 0.005 && fraction < 0.5, `changed fraction ${fraction}`);
  await card.screenshot({ path: path.join(shots, 'anonymize.png') });
  assert.deepEqual(problems, []);
  await page.context().close();
});

test('anonymize offers its choices as menus, and the fast detector with pixelation works', async () => {
  const { page, problems } = await openPage();
  await page.selectOption('#task', 'anonymize');
  const detectors = await page.locator('#options select[name="detector"] option').allTextContents();
  assert.deepEqual(detectors, ['(accurate)', 'accurate', 'fast']);
  await page.selectOption('#options select[name="detector"]', 'fast');
  await page.selectOption('#options select[name="mode"]', 'pixelate');
  const card = await send(page, photo);
  assert.equal(await card.getAttribute('data-state'), 'done', await card.locator('.status').textContent());
  const json = JSON.parse(await card.locator('.json pre').textContent());
  assert.equal(json.detector, 'fast');
  assert.equal(json.count, 3);
  const fraction = await changedFraction(card);
  assert.ok(fraction > 0.005 && fraction < 0.5, `changed fraction ${fraction}`);
  await card.screenshot({ path: path.join(shots, 'anonymize-fast.png') });
  assert.deepEqual(problems, []);
  await page.context().close();
});

test('holistic draws the landmarks of a real photo', async () => {
  const { page, problems } = await openPage();
  const card = await upload(page, 'holistic', photo);
  assert.equal(await card.getAttribute('data-state'), 'done', await card.locator('.status').textContent());
  const json = JSON.parse(await card.locator('.json pre').textContent());
  assert.equal(json.pose.length, 33);
  assert.equal(json.face.length, 468);
  const fraction = await changedFraction(card);
  assert.ok(fraction > 0.002 && fraction < 0.3, `changed fraction ${fraction}`);
  await card.screenshot({ path: path.join(shots, 'holistic.png') });
  assert.deepEqual(problems, []);
  await page.context().close();
});

test('parse colours every person and shows a legend of the labels found', async () => {
  const { page, problems } = await openPage();
  const card = await upload(page, 'parse', photo);
  assert.equal(await card.getAttribute('data-state'), 'done', await card.locator('.status').textContent());
  const json = JSON.parse(await card.locator('.json pre').textContent());
  assert.equal(json.person_count, 3);
  assert.match(json.mask, /base64 characters/);
  const legend = await card.locator('.legend span').allTextContents();
  assert.ok(legend.includes('face') && legend.includes('upper_clothes'), legend.join(','));
  assert.ok(!legend.includes('background'));
  const fraction = await changedFraction(card);
  assert.ok(fraction > 0.1, `changed fraction ${fraction}`);
  await card.screenshot({ path: path.join(shots, 'parse.png') });
  assert.deepEqual(problems, []);
  await page.context().close();
});

test('inspect shows its JSON', async () => {
  const { page } = await openPage();
  const card = await upload(page, 'inspect', photo);
  assert.equal(await card.getAttribute('data-state'), 'done');
  const json = JSON.parse(await card.locator('.json pre').textContent());
  assert.equal(json.width, 1024);
  assert.equal(json.height, 683);
  await page.context().close();
});

test('a broken file shows a human error and the page keeps working', async () => {
  const { page } = await openPage();
  const dir = mkdtempSync(path.join(tmpdir(), 'percept-web-'));
  const broken = path.join(dir, 'broken.jpg');
  const { writeFileSync, readFileSync } = await import('node:fs');
  writeFileSync(broken, readFileSync(photo).subarray(0, 5000));
  const card = await upload(page, 'art/pencil', broken);
  assert.equal(await card.getAttribute('data-state'), 'error');
  const text = await card.locator('.status').textContent();
  assert.match(text, /not a photo percept can read/);
  assert.match(text, /invalid|truncated|corrupt/i);
  await card.screenshot({ path: path.join(shots, 'error.png') });
  const good = await upload(page, 'art/pencil', photo);
  assert.equal(await good.getAttribute('data-state'), 'done');
  await page.context().close();
});
