// Embedding cae: load a model, denoise a made-up image from bytes and from floats, and check that
// decoding the latent code gives the denoised image. Prints what it did; exits 1 on any error.
#include <cae/cae.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: cae_consumer MODEL.cae\n");
    return 2;
  }
  try {
    const cae::Autoencoder model = cae::Autoencoder::load(argv[1]);
    const cae::Shape image = model.image_shape(), latent = model.latent_shape();
    std::printf("cae %s\n", cae::version().c_str());
    std::printf("image %dx%dx%d latent %dx%dx%d\n", image.channels, image.height, image.width,
                latent.channels, latent.height, latent.width);

    // Two images: a diagonal stripe pattern, as HWC bytes and as NCHW floats.
    const int count = 2;
    std::vector<std::uint8_t> pixels(count * image.size());
    for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = (i / 3 % 7 < 3) ? 230 : 20;
    std::vector<float> floats(pixels.size());
    for (int n = 0; n < count; ++n)
      for (int y = 0; y < image.height; ++y)
        for (int x = 0; x < image.width; ++x)
          for (int c = 0; c < image.channels; ++c)
            floats[((n * image.channels + c) * image.height + y) * image.width + x] =
                pixels[((n * image.height + y) * image.width + x) * image.channels + c] / 255.f;

    const std::vector<float> denoised = model.denoise(floats, count);
    const std::vector<std::uint8_t> denoised_bytes = model.denoise(pixels, count);
    const std::vector<float> codes = model.encode(floats, count);
    const std::vector<float> decoded = model.decode(codes, count);

    double mean = 0, byte_mean = 0, roundtrip = 0;
    for (float v : denoised) mean += v;
    for (std::uint8_t v : denoised_bytes) byte_mean += v;
    for (std::size_t i = 0; i < decoded.size(); ++i)
      roundtrip = std::max(roundtrip, double(std::abs(decoded[i] - denoised[i])));
    std::printf("mean %.6f byte-mean %.6f codes %zu roundtrip %.3g\n", mean / denoised.size(),
                byte_mean / denoised_bytes.size() / 255.0, codes.size(), roundtrip);
    return roundtrip < 1e-4 ? 0 : 1;
  } catch (const cae::Error& e) {
    std::fprintf(stderr, "cae_consumer: %s\n", e.what());
    return 1;
  }
}
