#!/usr/bin/env node
// ONNX Runtime's side of bench/run.py, inference only: cae's own ONNX export of the seed model
// (`cae export`) on ONNX Runtime's CPU execution provider (MLAS kernels), from the npm package
// onnxruntime-node. Reads one command per line on stdin and answers one JSON line, the protocol
// of cae_bench and torch_bench.py:
//
//   infer B T WARMUP STEPS   session.run on one batch of B images, T intra-op threads;
//                            images/s of the STEPS runs after WARMUP untimed ones
//   isa                      what this side can say about the instruction set it runs
//   quit
//
//   node bench/ort_bench.js MODEL.onnx [DIR]   DIR: where `npm install onnxruntime-node` put
//                                              node_modules (default build-bench/ort)
'use strict';

const path = require('path');
const readline = require('readline');

const [modelPath, ortDir = path.join(__dirname, '..', 'build-bench', 'ort')] = process.argv.slice(2);
if (!modelPath) {
  process.stderr.write('usage: node bench/ort_bench.js MODEL.onnx [DIR]\n');
  process.exit(2);
}
const ort = require(require.resolve('onnxruntime-node', { paths: [ortDir] }));

// The intra-op thread count is fixed when a session is made, so one session per count. The
// shapes are not: the export's batch is symbolic, and one session runs every batch size.
const sessions = new Map();
async function sessionFor(threads) {
  if (!sessions.has(threads)) {
    sessions.set(threads, await ort.InferenceSession.create(modelPath, {
      executionProviders: ['cpu'],
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
    }));
  }
  return sessions.get(threads);
}

// The input of the other sides: every pixel 0.25, N x 1 x 28 x 28.
async function inferRate(batch, threads, warmup, steps) {
  const session = await sessionFor(threads);
  const c = 1, h = 28, w = 28;
  const x = new ort.Tensor('float32', new Float32Array(batch * c * h * w).fill(0.25), [batch, c, h, w]);
  const feeds = { [session.inputNames[0]]: x };
  for (let i = 0; i < warmup; ++i) await session.run(feeds);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < steps; ++i) await session.run(feeds);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return (steps * batch) / seconds;
}

function answer(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function main() {
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    const words = line.trim().split(/\s+/);
    if (words[0] === '' || words[0] === 'quit') break;
    try {
      if (words[0] === 'isa') {
        // MLAS picks its kernels from CPUID and XCR0 once, at load; nothing outside the process
        // (environment variable, session option) caps it.
        answer({ isa: 'native (MLAS chooses from CPUID; ONNX Runtime has no ISA cap)', capped: false,
                 version: ort.env.versions.node || ort.env.versions.common || '?' });
        continue;
      }
      if (words[0] !== 'infer') throw new Error(`unknown command '${words[0]}' (ONNX Runtime runs inference only)`);
      const [batch, threads, warmup, steps] = words.slice(1, 5).map(Number);
      if (![batch, threads, warmup, steps].every((v) => Number.isInteger(v) && v >= 1))
        throw new Error('infer needs BATCH THREADS WARMUP STEPS, each a whole number >= 1');
      answer({ images_per_second: await inferRate(batch, threads, warmup, steps) });
    } catch (e) {  // the harness reports it and goes on
      answer({ error: String(e && e.message ? e.message : e) });
    }
  }
  for (const s of sessions.values()) await s.release();
}

main().catch((e) => {
  process.stderr.write(`ort_bench: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
