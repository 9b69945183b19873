// The instruction-set tiers (src/core/isa.h): names, the cap's order, the cap fixed once the
// kernels run, and a bad CAE_MAX_ISA ending the program with one clear message. That every tier's
// kernels are right is checked where the kernels are tested (test_thin_conv, test_loss_accuracy),
// and CI runs the whole suite again under CAE_MAX_ISA=avx2 on machines with AVX-512.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "core/isa.h"
#include "data/idx.h"
#include "environment.h"
#include "ops/dnnl/dnnl_executor.h"
#include "support.h"

namespace cae {
namespace {

using ::testing::HasSubstr;

TEST(Isa, NamesParseBackAndOthersAreRefused) {
  for (Isa isa : {Isa::baseline, Isa::avx2, Isa::avx512})
    EXPECT_EQ(parse_isa(isa_name(isa), "test"), isa);
  EXPECT_EQ(parse_isa("AVX2", "test"), Isa::avx2);
  EXPECT_THAT(test::error_of([] { parse_isa("avx3", "CAE_MAX_ISA"); }),
              HasSubstr("CAE_MAX_ISA: 'avx3' is not an instruction-set tier (expected avx512, "
                        "avx2 or baseline)"));
}

TEST(Isa, TheKernelsTierIsTheCpusCappedAndOneDnnFollowsIt) {
  EXPECT_LE(cpu_isa(), detected_isa());
  EXPECT_LE(cpu_isa(), isa_cap());
  EXPECT_THAT(isa_description(), HasSubstr(isa_name(cpu_isa())));
  // oneDNN's tier, in its words, is the same as ours.
  const std::string onednn = ops::dnnl_isa();
  switch (cpu_isa()) {
    case Isa::avx512: EXPECT_THAT(onednn, ::testing::StartsWith("avx512")); break;
    case Isa::avx2: EXPECT_THAT(onednn, ::testing::StartsWith("avx2")); break;
    case Isa::baseline: EXPECT_THAT(onednn, ::testing::AnyOf("sse41", "avx")); break;
  }
}

// The cap is the process's, set at the edge (the tests' main sets CAE_MAX_ISA's) before any
// kernel: once the kernels run, the same cap again changes nothing and another is refused, not
// ignored.
TEST(Isa, TheCapIsFixedOnceTheKernelsRunAndAnotherIsRefused) {
  const IsaCap in_force = isa_cap_in_force();  // fixes it, if no kernel has yet
  EXPECT_NO_THROW(set_isa_cap(in_force));
  IsaCap other = in_force;
  other.isa = in_force.isa == Isa::baseline ? Isa::avx2 : Isa::baseline;
  other.source = "--isa " + std::string(isa_name(other.isa));
  EXPECT_THAT(test::error_of([&] { set_isa_cap(other); }),
              HasSubstr("instruction-set cap " + other.source +
                        ": the kernels already run under "
                        "cap "));
  EXPECT_EQ(isa_cap_in_force(), in_force);
}

// What the edge reads: CAE_MAX_ISA caps oneDNN too; ONEDNN_MAX_CPU_ISA alone caps ours to its
// tier (oneDNN reads it itself); a name of no tier is an error kept for the first kernel.
TEST(Isa, TheEdgeReadsTheCapFromTheEnvironment) {
  {
    const test::ScopedEnv own("CAE_MAX_ISA", "AVX2"), dnnl("ONEDNN_MAX_CPU_ISA", "SSE41");
    EXPECT_EQ(isa_cap_from_environment(), (IsaCap{Isa::avx2, "CAE_MAX_ISA=AVX2", true, ""}));
  }
  {
    const test::ScopedEnv own("CAE_MAX_ISA", nullptr), dnnl("ONEDNN_MAX_CPU_ISA", "AVX2_VNNI");
    EXPECT_EQ(isa_cap_from_environment(),
              (IsaCap{Isa::avx2, "ONEDNN_MAX_CPU_ISA=AVX2_VNNI", false, ""}));
  }
  {
    const test::ScopedEnv own("CAE_MAX_ISA", ""), dnnl("ONEDNN_MAX_CPU_ISA", nullptr);
    EXPECT_EQ(isa_cap_from_environment(), IsaCap{});
  }
  const test::ScopedEnv bad("CAE_MAX_ISA", "avx3");
  EXPECT_EQ(isa_cap_from_environment().error,
            "CAE_MAX_ISA: 'avx3' is not an instruction-set tier (expected avx512, avx2 or "
            "baseline)");
}

TEST(Isa, ABadCapIsOneClearErrorAndACapTrainsOnThatTier) {
  const std::string dir = test::scratch_dir();
  std::filesystem::create_directories(dir + "/ds");
  data::write_idx_images(dir + "/ds/train-images-idx3-ubyte", test::binary_noise_images(20, 12, 1));
  data::write_idx_images(dir + "/ds/t10k-images-idx3-ubyte", test::binary_noise_images(5, 12, 2));
  const std::string train = std::string(CAE_EXE) + " train --dataset " + dir +
                            "/ds --epochs 1 --batch 10 --threads 1 --out " + dir + "/run";
  const test::CommandResult bad = test::run_shell("CAE_MAX_ISA=avx3 " + train);
  EXPECT_EQ(bad.status, 1) << bad.output;
  EXPECT_THAT(bad.output, HasSubstr("cae: error: CAE_MAX_ISA: 'avx3' is not an instruction-set "
                                    "tier"));
  const test::CommandResult base = test::run_shell("CAE_MAX_ISA=baseline " + train);
  EXPECT_EQ(base.status, 0) << base.output;
  EXPECT_TRUE(std::filesystem::exists(dir + "/run/model.cae"));
}

}  // namespace
}  // namespace cae
