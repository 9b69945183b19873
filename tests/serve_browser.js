#!/usr/bin/env node
// The page of `cae serve` in a real browser, used as a person uses it: Debian's chromium, driven
// by npm's playwright-core (scripts/setup-playwright.sh; it downloads no browser), opens a photo
// in the page, paints a stroke with mouse events, clicks Repair, and checks that
//   - the photo went to the server as its own bytes, with the mask the stroke painted;
//   - the repair differs from the photo only under that mask, and only near the stroke;
//   - it equals `cae repair` with the painted mask, byte for byte, and so does the download;
//   - at phone width the page fits the screen.
// It saves screenshots (wide and phone) into $CAE_TEST_OUT. CAE_SERVE_MODEL and CAE_SERVE_PHOTO
// (an 8-bit RGB PNG) replace the quickly trained model and the generated photo, for the picture
// in docs/serve.md. Exit status 0 passed, 1 failed, 77
// skipped (no chromium, or playwright-core not installed), saying why.
//   CAE_EXE=build/cae CAE_PLAYWRIGHT=build/playwright CAE_TEST_OUT=build/serve-browser \
//     node tests/serve_browser.js
'use strict';

const assert = require('assert');
const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--no-first-run'];
const exe = process.env.CAE_EXE || 'build/cae';
const out = process.env.CAE_TEST_OUT || 'build/serve-browser';
const playwrightDir = process.env.CAE_PLAYWRIGHT || 'build/playwright';

function skip(why) {
  console.log(`serve_browser: SKIPPED: ${why}`);
  process.exit(77);
}

// ---- PNG, enough for the test: 8-bit gray, gray+alpha, RGB, RGBA, not interlaced ----

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function encodePng(w, h, channels, pixels) {
  const chunk = (type, data) => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([head, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = { 1: 0, 2: 4, 3: 2, 4: 6 }[channels];
  const raw = Buffer.alloc(h * (1 + w * channels));
  for (let y = 0; y < h; y++)
    pixels.copy(raw, y * (1 + w * channels) + 1, y * w * channels, (y + 1) * w * channels);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

function decodePng(buf) {
  assert.strictEqual(buf.readUInt32BE(0), 0x89504e47, 'not a PNG');
  let pos = 8, w = 0, h = 0, depth = 0, type = 0, interlace = 0;
  const idat = [];
  while (pos + 8 <= buf.length) {
    const len = buf.readUInt32BE(pos);
    const kind = buf.toString('ascii', pos + 4, pos + 8);
    const data = buf.subarray(pos + 8, pos + 8 + len);
    if (kind === 'IHDR') {
      w = data.readUInt32BE(0);
      h = data.readUInt32BE(4);
      depth = data[8];
      type = data[9];
      interlace = data[12];
    } else if (kind === 'IDAT') {
      idat.push(data);
    } else if (kind === 'IEND') {
      break;
    }
    pos += 12 + len;
  }
  assert.strictEqual(depth, 8, `PNG depth ${depth}: the test reads 8-bit PNGs`);
  assert.strictEqual(interlace, 0, 'interlaced PNG');
  const c = { 0: 1, 4: 2, 2: 3, 6: 4 }[type];
  assert.ok(c, `PNG colour type ${type}`);
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = w * c;
  const px = Buffer.alloc(h * stride);
  for (let y = 0; y < h; y++) {
    const f = raw[y * (stride + 1)];
    for (let x = 0; x < stride; x++) {
      const v = raw[y * (stride + 1) + 1 + x];
      const a = x >= c ? px[y * stride + x - c] : 0;
      const b = y > 0 ? px[(y - 1) * stride + x] : 0;
      const d = x >= c && y > 0 ? px[(y - 1) * stride + x - c] : 0;
      let p;
      if (f === 0) p = 0;
      else if (f === 1) p = a;
      else if (f === 2) p = b;
      else if (f === 3) p = (a + b) >> 1;
      else {
        const e = a + b - d, pa = Math.abs(e - a), pb = Math.abs(e - b), pc = Math.abs(e - d);
        p = pa <= pb && pa <= pc ? a : pb <= pc ? b : d;
      }
      px[y * stride + x] = (v + p) & 0xff;
    }
  }
  return { w, h, c, px };
}

// A photo-like picture: smooth colour with texture, fixed.
function testPhoto(w, h, seed) {
  const px = Buffer.alloc(w * h * 3);
  let s = seed >>> 0;
  const rnd = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 4294967296);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let k = 0; k < 3; k++) {
        const v = 0.5 + 0.3 * Math.sin(x / (9 + 4 * k) + k) * Math.cos(y / (13 - 3 * k) - k) + 0.06 * (rnd() - 0.5);
        px[(y * w + x) * 3 + k] = Math.max(0, Math.min(255, Math.round(v * 255)));
      }
  return px;
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stdout}${r.stderr}`);
  return r;
}

// `cae serve` on a free port; resolves with the child and its port once it listens.
function startServer(model) {
  return new Promise((resolve, reject) => {
    const child = spawn(exe, ['serve', '-m', model, '--port', '0', '--threads', '2'],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr.on('data', (d) => {
      log += d;
      const m = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(log);
      if (m) resolve({ child, port: Number(m[1]), log: () => log });
    });
    child.on('exit', (code) => reject(new Error(`cae serve exited ${code}: ${log}`)));
    setTimeout(() => reject(new Error(`cae serve printed no address: ${log}`)), 30000);
  });
}

async function main() {
  if (!fs.existsSync(CHROMIUM))
    skip(`${CHROMIUM} is missing (Debian package chromium: scripts/install-deps.sh)`);
  let chromium;
  try {
    ({ chromium } = require(path.resolve(playwrightDir, 'node_modules', 'playwright-core')));
  } catch (e) {
    skip(`playwright-core is not in ${playwrightDir} (scripts/setup-playwright.sh): ${e.message}`);
  }
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });

  // An informed model for colour photos, trained for a moment on generated pictures: its
  // weights are poor, but it changes what it repairs, and that is what is checked.
  if (!process.env.CAE_SERVE_MODEL) {
    const data = path.join(out, 'data');
    for (const split of ['train', 'test']) fs.mkdirSync(path.join(data, split), { recursive: true });
    for (let i = 0; i < 3; i++)
      fs.writeFileSync(path.join(data, i < 2 ? 'train' : 'test', `${i}.png`), encodePng(40, 40, 3, testPhoto(40, 40, i + 1)));
    run(exe, ['train', '--dataset', data, '--patch', '16', '--informed', '--noise', '0', '--masks', '1',
      '--mask-min', '4', '--mask-max', '8', '--spec', 'conv 8 relu\nconv 8 relu\nconv 3', '--loss', 'mse',
      '--epochs', '1', '--batch', '8', '--patches-per-epoch', '16', '--threads', '2', '--out', path.join(out, 'run')]);
  }
  const model = process.env.CAE_SERVE_MODEL || path.join(out, 'run', 'model.cae');
  const photoPath = path.join(out, 'photo.png');
  if (process.env.CAE_SERVE_PHOTO) fs.copyFileSync(process.env.CAE_SERVE_PHOTO, photoPath);
  else fs.writeFileSync(photoPath, encodePng(160, 120, 3, testPhoto(160, 120, 7)));
  const photoBytes = fs.readFileSync(photoPath);
  const { w: W, h: H } = decodePng(photoBytes);
  const modelName = path.basename(model, '.cae');

  const server = await startServer(model);
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  let failed = null;
  try {
    const context = await browser.newContext({ viewport: { width: 1100, height: 760 }, acceptDownloads: true });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    // Nothing but the server: the page must work offline.
    const elsewhere = [];
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (!['blob:', 'data:'].includes(u.protocol) && u.host !== `127.0.0.1:${server.port}`) elsewhere.push(r.url());
    });
    // What the page sends and gets, kept as they pass: Chromium hands a test neither a multipart
    // body that holds files nor a body the page read as a blob, so fetch is watched from inside.
    await page.addInitScript(() => {
      const send = window.fetch;
      window.fetch = async (url, init) => {
        if (init && init.body instanceof FormData) {
          const sent = {};
          for (const [name, value] of init.body.entries())
            sent[name] = typeof value === 'string' ? value : Array.from(new Uint8Array(await value.arrayBuffer()));
          window.caeTestSent = sent;
          const answer = await send(url, init);
          window.caeTestReceived = Array.from(new Uint8Array(await answer.clone().arrayBuffer()));
          return answer;
        }
        return send(url, init);
      };
    });
    await page.goto(`http://127.0.0.1:${server.port}/`);
    await page.waitForSelector(`#model option[value="${modelName}"]`, { state: 'attached' });
    await page.setInputFiles('#photo-file', photoPath);
    await page.waitForSelector('#view', { state: 'visible' });
    await page.$eval('#brush', (b) => { b.value = '10'; b.dispatchEvent(new Event('input')); });

    // One stroke, left to right and down a little, in photo pixels mapped to the screen.
    const box = await page.locator('#view').boundingBox();
    const sx = box.width / W, sy = box.height / H;
    const from = { x: W * 0.25, y: H * 0.42 }, to = { x: W * 0.75, y: H * 0.58 };
    await page.mouse.move(box.x + from.x * sx, box.y + from.y * sy);
    await page.mouse.down();
    for (let i = 1; i <= 20; i++)
      await page.mouse.move(box.x + (from.x + (to.x - from.x) * i / 20) * sx, box.y + (from.y + (to.y - from.y) * i / 20) * sy);
    await page.mouse.up();

    const [response] = await Promise.all([
      page.waitForResponse('**/api/v1/repair'),
      page.click('#run'),
    ]);
    assert.strictEqual(response.status(), 200, `repair answered ${response.status()}: ${await response.text()}`);
    const sent = await page.evaluate(() => window.caeTestSent);
    const parts = { image: Buffer.from(sent.image), mask: Buffer.from(sent.mask) };
    assert.ok(parts.image.equals(photoBytes), 'the page sent other bytes than the photo file');
    assert.strictEqual(sent.model, modelName);
    const maskPath = path.join(out, 'painted-mask.png');
    fs.writeFileSync(maskPath, parts.mask);
    await page.waitForFunction(() => window.caeTestReceived);
    const result = Buffer.from(await page.evaluate(() => window.caeTestReceived));
    fs.writeFileSync(path.join(out, 'served.png'), result);

    // The repair differs from the photo only under the painted mask, which lies along the stroke.
    const photo = decodePng(photoBytes), mask = decodePng(parts.mask), repaired = decodePng(result);
    assert.deepStrictEqual([repaired.w, repaired.h, repaired.c], [W, H, 3]);
    assert.deepStrictEqual([mask.w, mask.h], [W, H]);
    let marked = 0, changed = 0;
    const radius = 10 / 2 + 2;  // the brush, and a pixel of antialiasing either side
    const dx = to.x - from.x, dy = to.y - from.y, len2 = dx * dx + dy * dy;
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const p = y * W + x;
        const damaged = mask.px[p * mask.c] !== 0 || (mask.c === 4 && mask.px[p * 4 + 3] !== 255 && mask.px[p * 4 + 3] !== 0);
        const t = Math.max(0, Math.min(1, ((x + 0.5 - from.x) * dx + (y + 0.5 - from.y) * dy) / len2));
        const dist = Math.hypot(x + 0.5 - (from.x + t * dx), y + 0.5 - (from.y + t * dy));
        if (damaged) {
          marked++;
          assert.ok(dist <= radius, `pixel (${x}, ${y}) is marked but ${dist.toFixed(1)} px from the stroke`);
        } else if (dist <= 10 / 2 - 1.5) {
          assert.fail(`pixel (${x}, ${y}) lies under the stroke but is not marked`);
        }
        for (let k = 0; k < 3; k++) {
          if (repaired.px[p * 3 + k] === photo.px[p * 3 + k]) continue;
          assert.ok(damaged, `pixel (${x}, ${y}) changed outside the painted mask`);
          changed++;
          break;
        }
      }
    assert.ok(marked > 500, `the stroke marked ${marked} pixels`);
    assert.ok(changed > marked / 4, `only ${changed} of the ${marked} marked pixels changed`);

    // The same as cae repair with the painted mask, byte for byte.
    const cliOut = path.join(out, 'cli.png');
    run(exe, ['repair', photoPath, '--mask', maskPath, '-m', model, '--threads', '2', '-o', cliOut]);
    assert.ok(fs.readFileSync(cliOut).equals(result), 'the served repair differs from cae repair');

    // Before/after and the download.
    await page.waitForSelector('#compare', { state: 'visible' });
    await page.waitForSelector('#download', { state: 'visible' });
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    const saved = path.join(out, 'downloaded.png');
    await download.saveAs(saved);
    assert.ok(fs.readFileSync(saved).equals(result), 'the downloaded PNG differs from the repair');
    assert.strictEqual(download.suggestedFilename(), 'photo-repaired.png');
    const status = await page.textContent('#status');
    assert.match(status, /^Repaired \d+ pixels/);
    await page.$eval('#slider', (s) => { s.value = '35'; s.dispatchEvent(new Event('input')); });
    await page.screenshot({ path: path.join(out, 'serve-page.png'), fullPage: true });

    // Phone width: one column, nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `at 390 px the page is ${overflow} px wider than the screen`);
    await page.screenshot({ path: path.join(out, 'serve-page-phone.png'), fullPage: true });

    assert.deepStrictEqual(elsewhere, [], 'the page asked for something beyond the server');
    assert.deepStrictEqual(errors, [], 'the page logged errors');
  } catch (e) {
    failed = e;
  } finally {
    await browser.close();
    server.child.kill('SIGTERM');
    const code = await new Promise((resolve) => server.child.on('exit', (c) => resolve(c)));
    if (!failed && code !== 0) failed = new Error(`cae serve exited ${code} after SIGTERM: ${server.log()}`);
  }
  if (failed) {
    console.error(`serve_browser: FAILED: ${failed.stack || failed}`);
    process.exit(1);
  }
  console.log(`serve_browser: passed; screenshots in ${out}`);
}

main().catch((e) => {
  console.error(`serve_browser: FAILED: ${e.stack || e}`);
  process.exit(1);
});
