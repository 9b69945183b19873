// The op table (src/ops/op_table.cpp): one row per op, and everything that reads it agrees with
// it: the spec parser, the shape check, the parameter list, the backends' columns and the
// kernels each backend reports.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "cae/error.h"
#include "nn/spec.h"
#include "op_specs.h"
#include "ops/net_check.h"
#include "ops/ops.h"
#include "support.h"

using namespace cae;
using ::testing::HasSubstr;

namespace {

// The index of the one op of this kind in the net built from one_op_spec (the third op).
constexpr int kOpIndex = 2;

ops::NetDesc one_op_net(const ops::OpInfo& info, int batch) {
  return nn::build_net(nn::parse_spec(test::one_op_spec(info)), {1, 8, 8}, batch);
}

}  // namespace

TEST(OpTable, OneRowPerKindInOrderWithUniqueNames) {
  const auto& table = ops::op_table();
  std::set<std::string> names, words;
  for (std::size_t i = 0; i < table.size(); ++i) {
    EXPECT_EQ(std::size_t(table[i].kind), i) << table[i].name;
    EXPECT_TRUE(names.insert(table[i].name).second) << table[i].name;
    EXPECT_TRUE(words.insert(table[i].spec_word).second) << table[i].spec_word;
    EXPECT_EQ(&ops::op_info(table[i].kind), &table[i]);
    EXPECT_EQ(ops::op_by_spec_word(table[i].spec_word), &table[i]);
    EXPECT_STREQ(ops::op_kind_name(table[i].kind), table[i].name);
  }
  EXPECT_EQ(ops::op_by_spec_word("convv"), nullptr);
  EXPECT_THROW(ops::op_info(ops::OpKind(table.size())), Error);
}

// docs/architecture.md says how many ops the table has ("The table has **N ops**"): kept true.
TEST(OpTable, TheArchitectureDocCountsEveryOp) {
  const std::string doc = test::read_file(std::string(CAE_SOURCE_DIR) + "/docs/architecture.md");
  const std::string marker = "The table has **";
  const std::size_t at = doc.find(marker);
  ASSERT_NE(at, std::string::npos) << "docs/architecture.md no longer counts the ops";
  std::size_t rows = ops::op_table().size();
#ifdef CAE_TOY_OP
  --rows;  // the test build's toy op, which the docs add as their example, not one of cae's
#endif
  EXPECT_EQ(std::stoul(doc.substr(at + marker.size())), rows);
}

TEST(OpTable, TheSpecParserKnowsEveryRowAndListsThemWhenAWordIsUnknown) {
  std::string message;
  try {
    nn::parse_spec("bogus 3");
  } catch (const Error& e) {
    message = e.what();
  }
  for (const ops::OpInfo& info : ops::op_table()) {
    EXPECT_THAT(message, HasSubstr(info.spec_word));
    const nn::Architecture arch = nn::parse_spec(test::one_op_spec(info));
    ASSERT_EQ(arch.layers.size(), 5u);
    EXPECT_EQ(arch.layers[kOpIndex].kind, info.kind);
    EXPECT_EQ(nn::format_spec(nn::parse_spec(nn::format_spec(arch))), nn::format_spec(arch));
  }
}

TEST(OpTable, ShapeRulesParametersAndJoinsFollowTheRow) {
  for (const ops::OpInfo& info : ops::op_table()) {
    SCOPED_TRACE(info.name);
    const ops::NetDesc net = one_op_net(info, 2);
    const ops::OpDesc& op = net.ops[kOpIndex];
    ASSERT_EQ(op.kind, info.kind);
    EXPECT_NO_THROW(ops::check_net_desc(net));
    EXPECT_EQ(ops::is_join(op.kind), op.other != ops::OpDesc::kNoOperand);
    int weights = 0;
    for (const ops::ParamInfo& p : ops::param_infos(net))
      if (p.op == kOpIndex && p.name == "weight") ++weights;
    EXPECT_EQ(weights, info.weights == ops::Weights::none ? 0 : 1);
    switch (info.shape) {
      case ops::ShapeRule::same: EXPECT_EQ(op.out, op.in); break;
      case ops::ShapeRule::concat: EXPECT_EQ(op.out.c, op.in.c + net.act_dims(op.other).c); break;
      case ops::ShapeRule::pool: EXPECT_EQ(op.out.c, op.in.c); break;
      case ops::ShapeRule::resize: EXPECT_EQ(op.out, (ops::Dims{op.in.c, 11, 5})); break;
      case ops::ShapeRule::window:
      case ops::ShapeRule::transposed: EXPECT_EQ(op.out.c, 16); break;
    }
    // An activation fused where the row says none is refused, not dropped.
    if (!info.fuses_activation) {
      ops::NetDesc bad = net;
      bad.ops[kOpIndex].act = ops::Activation::relu;
      EXPECT_THROW(ops::check_net_desc(bad), Error);
    }
  }
}

// Every backend whose column claims an op builds it, runs it, and reports a kernel for it in
// each pass and each fallback by op; a backend that is not available here (cuda without a GPU)
// is skipped by name.
TEST(OpTable, EachBackendRunsTheOpsItsColumnClaimsAndReportsTheirKernels) {
  for (ops::Backend backend : {ops::Backend::ref, ops::Backend::dnnl, ops::Backend::cuda}) {
    if (const std::string why = ops::backend_unavailable_reason(backend); !why.empty()) {
      std::cout << "skipped " << ops::backend_name(backend) << ": " << why << "\n";
      continue;
    }
    for (const ops::OpInfo& info : ops::op_table()) {
      SCOPED_TRACE(std::string(ops::backend_name(backend)) + " " + info.name);
      const ops::NetDesc net = one_op_net(info, 2);
      if (!info.runs_on(backend)) {
        EXPECT_THROW(ops::make_executor(backend, net), Error);
        continue;
      }
      auto exec = ops::make_executor(backend, net);
      const std::vector<float> x = test::random_floats(2 * net.input.size(), 3, 0.f, 1.f);
      const std::vector<float> dy = test::random_floats(2 * net.output().size(), 4, -1.f, 1.f);
      std::vector<float> dx(x.size());
      exec->forward(x.data());
      exec->backward(dy.data(), dx.data());
      std::set<std::string> passes;
      for (const ops::KernelUse& k : exec->kernels()) {
        EXPECT_FALSE(k.impl.empty()) << "op " << k.op << " " << k.pass << " " << k.name;
        if (k.op == kOpIndex) passes.insert(k.pass);
      }
      EXPECT_TRUE(passes.count("forward"));
      EXPECT_TRUE(passes.count("backward"));
      // A fallback names its op and why (dnnl reorders around a few reference kernels).
      for (const std::string& line : exec->fallbacks())
        EXPECT_THAT(line, ::testing::MatchesRegex("op [0-9]+ \\([a-z]+ .*\\): .+"));
      if (backend == ops::Backend::ref) {
        EXPECT_THAT(exec->fallbacks(), ::testing::IsEmpty());
      }
    }
  }
}

// The activation table: one row per activation in order, each element-wise op's activation its
// own, each named in a spec (none by nothing) and, fused, exported as its op's ONNX operator.
TEST(ActivationTable, OneRowPerActivationMatchingItsElementWiseOp) {
  using cae::ops::Activation;
  for (Activation act : {Activation::none, Activation::relu, Activation::sigmoid}) {
    const cae::ops::ActivationInfo& info = cae::ops::activation_info(act);
    EXPECT_EQ(info.act, act);
    if (act == Activation::none) {
      EXPECT_STREQ(info.spec_word, "");
      EXPECT_EQ(info.onnx, nullptr);
      continue;
    }
    EXPECT_EQ(cae::ops::activation_of(info.op), act);
    EXPECT_STREQ(info.spec_word, cae::ops::op_info(info.op).spec_word);
    EXPECT_STREQ(info.onnx, cae::ops::op_info(info.op).onnx);
  }
  EXPECT_THROW(cae::ops::activation_of(cae::ops::OpKind::conv), cae::Error);
  EXPECT_THROW(cae::ops::activation_info(Activation(7)), cae::Error);
}
