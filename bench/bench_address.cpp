// Micro-benchmarks of the address schemes. Goal (issue 2): >= 2M SRS forwards/s
// on one core. scripts/bench-srs compares with Mail::SRS and pysrs in one run.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "backstop/envelope/batv.hpp"
#include "backstop/envelope/normalize.hpp"
#include "backstop/envelope/srs.hpp"

using namespace backstop;

namespace {

constexpr UnixTime kT = 1577836860;

std::vector<std::string> senders() {
    std::vector<std::string> out;
    for (int i = 0; i < 1024; ++i) {
        out.push_back("user" + std::to_string(i * 7919 % 100000) + ".name@sub" +
                      std::to_string(i % 37) + ".example.org");
    }
    return out;
}

SrsCodec make_codec() {
    SrsOptions o;
    o.domain = "forwarder.example.com";
    return SrsCodec(SrsSecrets{{"tops3cr3t", "older-secret"}}, o);
}

void BM_SrsForward(benchmark::State& state) {
    auto codec = make_codec();
    auto in = senders();
    std::size_t i = 0;
    for (auto _ : state) {
        auto r = codec.forward(in[i++ & 1023], kT);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SrsForward);

void BM_SrsReverse(benchmark::State& state) {
    auto codec = make_codec();
    std::vector<std::string> in;
    for (const auto& s : senders()) in.push_back(codec.forward(s, kT)->address);
    std::size_t i = 0;
    for (auto _ : state) {
        auto r = codec.reverse(in[i++ & 1023], kT);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SrsReverse);

BatvSigner make_signer() {
    return BatvSigner(BatvKeys{{{1, "secret"}, {0, "older"}}}, {});
}

void BM_BatvSign(benchmark::State& state) {
    auto signer = make_signer();
    auto in = senders();
    std::size_t i = 0;
    for (auto _ : state) {
        auto r = signer.sign(in[i++ & 1023], kT);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BatvSign);

void BM_BatvVerify(benchmark::State& state) {
    auto signer = make_signer();
    std::vector<std::string> in;
    for (const auto& s : senders()) in.push_back(*signer.sign(s, kT));
    std::size_t i = 0;
    for (auto _ : state) {
        auto v = signer.verify(in[i++ & 1023], kT);
        benchmark::DoNotOptimize(v);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BatvVerify);

void BM_Normalize(benchmark::State& state) {
    auto codec = make_codec();
    std::vector<std::string> in;
    for (const auto& s : senders()) in.push_back(codec.forward(s, kT)->address);
    std::size_t i = 0;
    for (auto _ : state) {
        auto r = normalize_address(in[i++ & 1023]);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Normalize);

}  // namespace
