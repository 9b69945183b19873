// cae serve's page: open a photo, paint the damage on a canvas (or upload a mask), repair or
// denoise it through the server's API, compare before and after with a slider, download the PNG.
// Plain JavaScript, no build step, nothing from the network but this server.
'use strict';

const $ = (id) => document.getElementById(id);

const state = {
  models: [],
  photoFile: null,     // the file as chosen: sent as is, so the server reads the same bytes
  photoName: 'photo',
  photo: null,         // ImageBitmap of the photo, for drawing
  photoUrl: null,
  mask: null,          // canvas at the photo's size: opaque white where damaged
  history: [],         // ImageData of the mask before each stroke (Undo)
  resultUrl: null,
  painting: false,
  last: null,          // the stroke's previous point, in photo pixels
  pointer: null,       // where the brush outline is drawn
  busy: false,
};

const mode = () => document.querySelector('input[name="mode"]:checked').value;
const tool = () => document.querySelector('input[name="tool"]:checked').value;
const brush = () => Number($('brush').value);

function say(text, bad = false) {
  $('status').textContent = text;
  $('status').classList.toggle('bad', bad);
}

// ---- models ----

function noiseText(model) {
  const sigma = model.noise_sigma;
  if (!sigma) return `trained on: ${model.corruption}`;
  return `trained for Gaussian noise σ ${sigma} (about ${Math.round(sigma * 255)} of 255)`;
}

function fillModels() {
  const select = $('model');
  const previous = select.value;
  select.textContent = '';
  const kind = mode() === 'repair' ? 'informed' : 'blind';
  for (const m of state.models.filter((m) => m.kind === kind)) {
    const option = document.createElement('option');
    option.value = m.name;
    const channels = m.channels === 1 ? 'gray' : m.channels === 3 ? 'colour' : `${m.channels} channels`;
    option.textContent = kind === 'blind' && m.noise_sigma
      ? `${m.name} (${channels}, σ ${m.noise_sigma})` : `${m.name} (${channels})`;
    select.append(option);
  }
  if ([...select.options].some((o) => o.value === previous)) select.value = previous;
  if (select.options.length === 0) {
    const option = document.createElement('option');
    option.textContent = kind === 'informed'
      ? 'no informed model is served (cae serve -m)' : 'no blind model is served (cae serve -m)';
    option.value = '';
    select.append(option);
  }
  describeModel();
}

function describeModel() {
  const m = state.models.find((x) => x.name === $('model').value);
  const info = $('model-info');
  if (!m) {
    info.textContent = '';
    $('noise-info').textContent = '';
    return;
  }
  const tile = `${m.tile[0]}×${m.tile[1]} tiles`;
  info.textContent = m.kind === 'informed'
    ? `Repairs what the mask marks, in ${tile}${m.fill ? `, correcting ${m.fill}` : ''}.`
    : `Denoises the whole photo in ${tile}.`;
  $('noise-info').textContent = m.kind === 'blind'
    ? `This model is ${noiseText(m)}. It takes no noise level: pick the model trained nearest ` +
      `your photo's noise.` : '';
  const limits = state.limits;
  if (limits) $('adapt').max = String(limits.max_adapt_steps);
}

async function loadModels() {
  try {
    const r = await fetch('api/v1/models');
    const doc = await r.json();
    state.models = doc.models;
    state.limits = doc.limits;
    // Start in the mode the server has models for.
    if (!state.models.some((m) => m.kind === 'informed') && state.models.some((m) => m.kind === 'blind'))
      document.querySelector('input[name="mode"][value="denoise"]').checked = true;
    setMode();
  } catch (e) {
    say(`Cannot list the models: ${e.message}`, true);
  }
}

function setMode() {
  const repair = mode() === 'repair';
  $('repair-tools').hidden = !repair;
  $('denoise-tools').hidden = repair;
  $('run').textContent = repair ? 'Repair' : 'Denoise';
  fillModels();
  updateRun();
}

function updateRun() {
  $('run').disabled = state.busy || !state.photo || !$('model').value;
}

// ---- the photo and the mask ----

async function openPhoto(file) {
  if (!file) return;
  if (!/^image\/(png|jpeg)$/.test(file.type) && !/\.(png|jpe?g)$/i.test(file.name)) {
    say(`${file.name}: not a PNG or JPEG file`, true);
    return;
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch (e) {
    say(`${file.name}: the browser cannot read it as an image`, true);
    return;
  }
  state.photoFile = file;
  state.photoName = file.name.replace(/\.[^.]*$/, '') || 'photo';
  state.photo = bitmap;
  if (state.photoUrl) URL.revokeObjectURL(state.photoUrl);
  state.photoUrl = URL.createObjectURL(file);
  const view = $('view');
  view.width = bitmap.width;
  view.height = bitmap.height;
  state.mask = document.createElement('canvas');
  state.mask.width = bitmap.width;
  state.mask.height = bitmap.height;
  state.history = [];
  showView('paint');
  $('download').hidden = true;
  say(`${file.name}: ${bitmap.width}×${bitmap.height}. ` +
      (mode() === 'repair' ? 'Paint over the damage, then Repair.' : 'Choose a model, then Denoise.'));
  draw();
  updateRun();
}

function showView(which) {
  $('drop').hidden = which !== 'drop';
  $('paint').hidden = which !== 'paint';
  $('compare').hidden = which !== 'compare';
  fit();
}

// The photo as large as the stage allows (small photos enlarged up to 4×), the painting canvas
// and the before/after pair at the same size.
function fit() {
  if (!state.photo) return;
  const stage = document.querySelector('.stage');
  const room = stage.clientWidth - 2 * parseFloat(getComputedStyle(stage).paddingLeft);
  const tall = window.innerHeight * 0.78;
  const scale = Math.min(room / state.photo.width, tall / state.photo.height, 4);
  const w = `${Math.floor(state.photo.width * scale)}px`, h = `${Math.floor(state.photo.height * scale)}px`;
  for (const el of [$('view'), $('before'), $('compare-frame')]) {
    el.style.width = w;
    el.style.height = h;
  }
}

let drawQueued = false;
function draw() {
  if (drawQueued) return;
  drawQueued = true;
  requestAnimationFrame(() => {
    drawQueued = false;
    const view = $('view');
    const g = view.getContext('2d');
    g.globalAlpha = 1;
    g.drawImage(state.photo, 0, 0);
    if (mode() === 'repair' && state.mask) {
      // The damage in translucent red over the photo.
      const tint = tintCanvas();
      g.globalAlpha = 0.55;
      g.drawImage(tint, 0, 0);
      g.globalAlpha = 1;
      if (state.pointer) {
        const scale = view.width / view.getBoundingClientRect().width;
        g.lineWidth = Math.max(1, 1.5 * scale);
        g.strokeStyle = tool() === 'erase' ? '#ffffff' : '#ffeb3b';
        g.beginPath();
        g.arc(state.pointer.x, state.pointer.y, brush() / 2, 0, 2 * Math.PI);
        g.stroke();
      }
    }
  });
}

let tint = null;
function tintCanvas() {
  if (!tint || tint.width !== state.mask.width || tint.height !== state.mask.height) {
    tint = document.createElement('canvas');
    tint.width = state.mask.width;
    tint.height = state.mask.height;
  }
  const g = tint.getContext('2d');
  g.globalCompositeOperation = 'copy';
  g.drawImage(state.mask, 0, 0);
  g.globalCompositeOperation = 'source-in';
  g.fillStyle = '#ff1744';
  g.fillRect(0, 0, tint.width, tint.height);
  g.globalCompositeOperation = 'source-over';
  return tint;
}

function photoPoint(event) {
  const view = $('view');
  const r = view.getBoundingClientRect();
  return {
    x: (event.clientX - r.left) * (view.width / r.width),
    y: (event.clientY - r.top) * (view.height / r.height),
  };
}

function stroke(from, to) {
  const g = state.mask.getContext('2d');
  g.globalCompositeOperation = tool() === 'erase' ? 'destination-out' : 'source-over';
  g.strokeStyle = '#ffffff';
  g.fillStyle = '#ffffff';
  g.lineCap = 'round';
  g.lineJoin = 'round';
  g.lineWidth = brush();
  if (from.x === to.x && from.y === to.y) {
    g.beginPath();
    g.arc(to.x, to.y, brush() / 2, 0, 2 * Math.PI);
    g.fill();
  } else {
    g.beginPath();
    g.moveTo(from.x, from.y);
    g.lineTo(to.x, to.y);
    g.stroke();
  }
  g.globalCompositeOperation = 'source-over';
}

function pointerDown(event) {
  if (!state.photo || mode() !== 'repair' || event.button > 0) return;
  event.preventDefault();
  $('view').setPointerCapture(event.pointerId);
  const g = state.mask.getContext('2d');
  state.history.push(g.getImageData(0, 0, state.mask.width, state.mask.height));
  if (state.history.length > 20) state.history.shift();
  state.painting = true;
  state.last = photoPoint(event);
  stroke(state.last, state.last);
  state.pointer = state.last;
  draw();
}

function pointerMove(event) {
  if (!state.photo) return;
  const p = photoPoint(event);
  state.pointer = p;
  if (state.painting) {
    stroke(state.last, p);
    state.last = p;
  }
  draw();
}

function pointerUp() {
  state.painting = false;
  state.last = null;
}

function maskPixels() {
  const g = state.mask.getContext('2d');
  return g.getImageData(0, 0, state.mask.width, state.mask.height);
}

// The mask as the server reads it: an opaque gray PNG, white where any of the stroke's coverage
// fell (its soft edge included), black elsewhere. What the red shows is what is repaired.
function maskBlob() {
  const src = maskPixels();
  const out = new ImageData(src.width, src.height);
  let damaged = 0;
  for (let i = 0; i < src.data.length; i += 4) {
    const v = src.data[i + 3] > 0 ? 255 : 0;
    damaged += v ? 1 : 0;
    out.data[i] = out.data[i + 1] = out.data[i + 2] = v;
    out.data[i + 3] = 255;
  }
  const c = document.createElement('canvas');
  c.width = src.width;
  c.height = src.height;
  c.getContext('2d').putImageData(out, 0, 0);
  return new Promise((resolve) => c.toBlob((blob) => resolve({ blob, damaged }), 'image/png'));
}

// An uploaded mask by cae's conventions (docs/repair.md): alpha when it is not opaque
// everywhere, else any non-zero colour (a JPEG's from 128).
async function openMask(file) {
  if (!file || !state.photo) {
    if (!state.photo) say('Open a photo first, then its mask.', true);
    return;
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
  } catch (e) {
    say(`${file.name}: the browser cannot read it as an image`, true);
    return;
  }
  if (bitmap.width !== state.photo.width || bitmap.height !== state.photo.height) {
    say(`${file.name}: the mask is ${bitmap.width}×${bitmap.height}, the photo ` +
        `${state.photo.width}×${state.photo.height}: they must be the same size`, true);
    return;
  }
  const c = document.createElement('canvas');
  c.width = bitmap.width;
  c.height = bitmap.height;
  const g = c.getContext('2d');
  g.drawImage(bitmap, 0, 0);
  const src = g.getImageData(0, 0, c.width, c.height);
  const jpeg = file.type === 'image/jpeg' || /\.jpe?g$/i.test(file.name);
  let alphaSays = false;
  for (let i = 3; i < src.data.length && !alphaSays; i += 4) alphaSays = src.data[i] !== 255;
  const threshold = jpeg ? 128 : 1;
  const out = new ImageData(c.width, c.height);
  let damaged = 0;
  for (let i = 0; i < src.data.length; i += 4) {
    const d = src.data;
    const hit = alphaSays ? d[i + 3] !== 0
      : d[i] >= threshold || d[i + 1] >= threshold || d[i + 2] >= threshold;
    if (hit) {
      out.data[i] = out.data[i + 1] = out.data[i + 2] = out.data[i + 3] = 255;
      damaged++;
    }
  }
  const mg = state.mask.getContext('2d');
  state.history.push(mg.getImageData(0, 0, state.mask.width, state.mask.height));
  mg.putImageData(out, 0, 0);
  showView('paint');
  say(`${file.name}: ${damaged} pixels marked. Paint or erase more, then Repair.`);
  draw();
}

// ---- running a job ----

function showProgress(text) {
  const started = performance.now();
  let timer = null;
  // Only for what takes longer than half a second: a quick repair shows no flash.
  const delay = setTimeout(() => {
    $('progress').hidden = false;
    const tick = () => {
      $('progress-text').textContent = `${text} ${((performance.now() - started) / 1000).toFixed(1)} s`;
    };
    tick();
    timer = setInterval(tick, 100);
  }, 500);
  return () => {
    clearTimeout(delay);
    if (timer) clearInterval(timer);
    $('progress').hidden = true;
  };
}

async function run() {
  if (!state.photo || state.busy) return;
  const repair = mode() === 'repair';
  const form = new FormData();
  form.append('image', state.photoFile, state.photoFile.name);
  form.append('model', $('model').value);
  let damaged = 0;
  if (repair) {
    const mask = await maskBlob();
    damaged = mask.damaged;
    if (damaged === 0) {
      say('Paint over the damage first (or upload a mask): nothing is marked.', true);
      return;
    }
    form.append('mask', mask.blob, 'mask.png');
    const adapt = Number($('adapt').value) || 0;
    if (adapt > 0) form.append('adapt', String(adapt));
  }
  state.busy = true;
  updateRun();
  $('run').setAttribute('aria-busy', 'true');
  const adaptSteps = repair ? Number($('adapt').value) || 0 : 0;
  const done = showProgress(repair
    ? (adaptSteps > 0 ? `Adapting ${adaptSteps} steps, then repairing…` : 'Repairing…')
    : 'Denoising…');
  say(repair ? `Repairing ${damaged} pixels…` : 'Denoising…');
  try {
    const r = await fetch(repair ? 'api/v1/repair' : 'api/v1/denoise', { method: 'POST', body: form });
    if (!r.ok) {
      let message = `HTTP ${r.status}`;
      try {
        message = (await r.json()).error || message;
      } catch (e) { /* not JSON */ }
      if (r.status === 503) message += ` (the server is busy: try again in ${r.headers.get('Retry-After') || 1} s)`;
      say(message, true);
      return;
    }
    const blob = await r.blob();
    if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
    state.resultUrl = URL.createObjectURL(blob);
    await showResult();
    const tiles = r.headers.get('X-Cae-Tiles') || '';
    const [run_, all] = tiles.split('/');
    const seconds = Number(r.headers.get('X-Cae-Seconds') || 0).toFixed(2);
    say(repair
      ? `Repaired ${r.headers.get('X-Cae-Damaged-Pixels')} pixels with ${r.headers.get('X-Cae-Model')}: ` +
        `${run_} of ${all} tiles ran, ${seconds} s. Drag the slider to compare.`
      : `Denoised with ${r.headers.get('X-Cae-Model')}: ${all} tiles, ${seconds} s. Drag the slider to compare.`);
    const download = $('download');
    download.href = state.resultUrl;
    download.download = `${state.photoName}-${repair ? 'repaired' : 'denoised'}.png`;
    download.hidden = false;
  } catch (e) {
    say(`The server did not answer: ${e.message}`, true);
  } finally {
    done();
    state.busy = false;
    $('run').removeAttribute('aria-busy');
    updateRun();
  }
}

function showResult() {
  $('before').src = state.photoUrl;
  const after = $('after');
  return new Promise((resolve) => {
    after.onload = () => resolve();
    after.onerror = () => resolve();
    after.src = state.resultUrl;
    showView('compare');
    setSlider();
  });
}

function setSlider() {
  const v = Number($('slider').value);
  $('after').style.clipPath = `inset(0 0 0 ${v}%)`;
  $('compare-line').style.left = `${v}%`;
}

// ---- wiring ----

function init() {
  $('photo-file').addEventListener('change', (e) => openPhoto(e.target.files[0]));
  $('mask-file').addEventListener('change', (e) => openMask(e.target.files[0]));
  for (const r of document.querySelectorAll('input[name="mode"]')) r.addEventListener('change', () => {
    setMode();
    if (state.photo) {
      showView('paint');
      draw();
    }
  });
  $('model').addEventListener('change', () => {
    describeModel();
    updateRun();
  });
  $('brush').addEventListener('input', () => {
    $('brush-value').textContent = $('brush').value;
    draw();
  });
  for (const r of document.querySelectorAll('input[name="tool"]')) r.addEventListener('change', draw);
  $('clear-mask').addEventListener('click', () => {
    if (!state.mask) return;
    const g = state.mask.getContext('2d');
    state.history.push(g.getImageData(0, 0, state.mask.width, state.mask.height));
    g.clearRect(0, 0, state.mask.width, state.mask.height);
    showView('paint');
    draw();
  });
  $('undo').addEventListener('click', () => {
    const previous = state.history.pop();
    if (!previous) return;
    state.mask.getContext('2d').putImageData(previous, 0, 0);
    showView('paint');
    draw();
  });
  $('run').addEventListener('click', run);
  $('back').addEventListener('click', () => {
    showView('paint');
    draw();
  });
  $('slider').addEventListener('input', setSlider);

  const view = $('view');
  view.addEventListener('pointerdown', pointerDown);
  view.addEventListener('pointermove', pointerMove);
  view.addEventListener('pointerup', pointerUp);
  view.addEventListener('pointercancel', pointerUp);
  view.addEventListener('pointerleave', () => {
    state.pointer = null;
    if (state.photo) draw();
  });

  // Keyboard: [ and ] change the brush, E toggles erase (outside text fields).
  document.addEventListener('keydown', (e) => {
    if (e.target.closest('input[type="number"], select') || e.ctrlKey || e.metaKey || e.altKey) return;
    const b = $('brush');
    if (e.key === '[' || e.key === ']') {
      b.value = String(Math.max(1, Math.min(200, brush() + (e.key === ']' ? 4 : -4))));
      $('brush-value').textContent = b.value;
      draw();
    } else if (e.key === 'e' || e.key === 'E') {
      const other = tool() === 'erase' ? 'paint' : 'erase';
      document.querySelector(`input[name="tool"][value="${other}"]`).checked = true;
      draw();
    }
  });

  // A photo dropped anywhere on the page.
  const stage = document.querySelector('.stage');
  document.addEventListener('dragover', (e) => {
    e.preventDefault();
    stage.classList.add('dragging');
  });
  document.addEventListener('dragleave', (e) => {
    if (!e.relatedTarget) stage.classList.remove('dragging');
  });
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    stage.classList.remove('dragging');
    const file = e.dataTransfer.files[0];
    if (file) openPhoto(file);
  });

  window.addEventListener('resize', fit);
  showView('drop');
  loadModels();
}

init();
