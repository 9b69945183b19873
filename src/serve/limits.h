// The limits of cae serve, each a named constant here and a flag of `cae serve` (docs/serve.md,
// "Limits"): what one request may send and cost, and how many may run and wait at once.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cae::serve {

// --max-upload-mb: a request body above this is refused from its Content-Length, before it is
// read (413). 32 MiB holds a 24-megapixel JPEG and its mask with room to spare.
inline constexpr std::size_t kDefaultMaxUploadMiB = 32;
// --max-megapixels: an image or mask whose header claims more pixels is refused before its
// pixels are decoded (413), the decompression bomb included. A repair holds about 70 bytes per
// pixel (train/repair.h), so 24 megapixels (a 6000×4000 camera photo) take about 1.7 GB.
inline constexpr double kDefaultMaxMegapixels = 24;
// --max-adapt-steps: adaptation costs about 0.1 s a step on 2 cores; a request asking for more
// steps is refused (400) rather than holding a worker for minutes.
inline constexpr int kDefaultMaxAdaptSteps = 1000;
// --workers: repairs and denoisings run at once. One by default: a repair already uses every
// core (OpenMP), and two at once on the same cores only share them.
inline constexpr int kDefaultWorkers = 1;
// --queue: requests that may wait for a worker; one more is answered 503 with Retry-After.
inline constexpr int kDefaultQueue = 16;
// Retry-After of a 503: about the time a worker takes for a photo of a few megapixels.
inline constexpr int kRetryAfterSeconds = 1;
// Connections served at once beyond the workers and the queue: for /healthz, /api/v1/models, the
// page, and bad requests, which are answered while every worker is busy.
inline constexpr int kSpareConnections = 8;
// A client that stops sending in the middle of a request is dropped after this long.
inline constexpr int kReadTimeoutSeconds = 5;

}  // namespace cae::serve
