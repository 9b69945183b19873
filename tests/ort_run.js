#!/usr/bin/env node
// ONNX Runtime's side of tests/test_onnx.cpp: runs cae's exported models on ONNX Runtime's CPU
// execution provider (npm onnxruntime-node, scripts/setup-ort.sh) and writes what they compute.
//
//   node tests/ort_run.js ORT_DIR JOBS
//
// JOBS is a text file, one job a line: MODEL.onnx INPUT.bin N C H W OUTPUT.bin [MASK.bin], where
// INPUT.bin holds N*C*H*W little-endian float32 (NCHW) and OUTPUT.bin receives the model's output
// the same way. Without MASK.bin the input goes to the model's one input (a blind model's
// "noisy"); with it, to an informed model's "image", and MASK.bin's N*1*H*W floats to its "mask".
// Any failure ends with a message on stderr and exit status 1.
'use strict';

const fs = require('fs');

async function main() {
  const [ortDir, jobsPath] = process.argv.slice(2);
  if (!ortDir || !jobsPath) {
    process.stderr.write('usage: node tests/ort_run.js ORT_DIR JOBS\n');
    process.exit(2);
  }
  const ort = require(require.resolve('onnxruntime-node', {paths: [ortDir]}));
  const jobs = fs.readFileSync(jobsPath, 'utf8').split('\n').filter((l) => l.trim());
  for (const job of jobs) {
    const [model, input, n, c, h, w, output, mask] = job.trim().split(/\s+/);
    const dims = [n, c, h, w].map(Number);
    const floats = (path) => {
      const bytes = fs.readFileSync(path);
      return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    };
    const x = new ort.Tensor('float32', floats(input), dims);
    const session = await ort.InferenceSession.create(model, {
      executionProviders: ['cpu'],
      intraOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    });
    const feeds = mask ?
        {image: x, mask: new ort.Tensor('float32', floats(mask), [dims[0], 1, dims[2], dims[3]])} :
        {[session.inputNames[0]]: x};
    const result = await session.run(feeds);
    const y = result[session.outputNames[0]].data;
    fs.writeFileSync(output, Buffer.from(y.buffer, y.byteOffset, y.byteLength));
  }
}

main().catch((e) => {
  process.stderr.write(`ort_run: ${e.message}\n`);
  process.exit(1);
});
