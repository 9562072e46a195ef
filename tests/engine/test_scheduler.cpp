// engine::Scheduler on a paged cache without a model: the token budget and sequence limit, chunked prefill
// beside decode tokens, the logit rows asked for, admission undone before anyone is preempted, preemption of
// the newest sequence with recompute from the front of the queue, forks, speculative drafts, determinism.
#include "lib/engine/scheduler.h"

#include <doctest/doctest.h>

#include <tuple>

#include "lib/core/error.h"

using namespace llmopt;
using engine::Scheduler;
using engine::SchedulerOptions;

namespace {

struct Fixture {
  kv::PagedCache cache;
  Scheduler s;
  Fixture(int64_t blocks, int64_t block_size, SchedulerOptions o)
      : cache(backend::cpu(), kv::make_format(DType::F32, block_size, 1, 2, 2), 1, blocks), s(cache, o) {}
};

SchedulerOptions opts(int64_t budget, int64_t max_seqs, bool prefix = true) { return {budget, max_seqs, prefix}; }

std::vector<int32_t> prompt(int n, int32_t first) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back(first + i);
  return p;
}

using E = std::tuple<int64_t, int64_t, int64_t, int64_t>;  // seq, start, n, logits
std::vector<E> entries(const Scheduler::Batch& b) {
  std::vector<E> v;
  for (const auto& e : b.entries) v.emplace_back(e.seq, e.start, e.n, e.logits());
  return v;
}

// Every sequence whose pending tokens were all fed gets token 7.
void append_done(Scheduler& s, const Scheduler::Batch& b) {
  for (const auto& e : b.entries)
    if (e.logits() > 0) s.append(e.seq, 7);
}

}  // namespace

TEST_CASE("budget: running sequences first, then waiting ones; long prompts are chunked beside decode tokens") {
  Fixture f(64, 4, opts(8, 8));
  Scheduler& s = f.s;
  for (int i = 0; i < 3; ++i) s.add(prompt(5, 10 * i + 1));
  const auto* b = &s.schedule();
  CHECK(entries(*b) == std::vector<E>{{0, 0, 5, 1}, {1, 0, 3, 0}});
  CHECK(b->logit_rows == std::vector<int32_t>{4});
  CHECK(b->tokens == std::vector<int32_t>{1, 2, 3, 4, 5, 11, 12, 13});
  CHECK(b->attention.num_tokens == 8);
  s.computed();
  append_done(s, *b);
  b = &s.schedule();
  CHECK(entries(*b) == std::vector<E>{{0, 5, 1, 1}, {1, 3, 2, 1}, {2, 0, 5, 1}});
  CHECK(b->logit_rows == std::vector<int32_t>{0, 2, 7});
  CHECK(b->tokens == std::vector<int32_t>{7, 14, 15, 21, 22, 23, 24, 25});
  s.computed();
  append_done(s, *b);
  b = &s.schedule();
  CHECK(entries(*b) == std::vector<E>{{0, 6, 1, 1}, {1, 5, 1, 1}, {2, 5, 1, 1}});
  for (int64_t q : {0, 1, 2}) CHECK(s.cache().length(int(q)) == (q == 0 ? 7 : 6));
  s.computed();
  for (int64_t q : {0, 1, 2}) s.finish(q);
  CHECK(s.idle());
  CHECK(s.schedule().empty());
  CHECK(f.cache.pool().num_free() == 64);
}

TEST_CASE("sequence limit: a request waits until a running one finishes; n samples count n") {
  Fixture f(64, 4, opts(100, 3));
  Scheduler& s = f.s;
  s.add(prompt(3, 1));
  s.add(prompt(3, 11), 2);  // two samples: 1 + 2 = 3 running
  s.add(prompt(3, 21));
  auto* b = &s.schedule();
  CHECK(entries(*b) == std::vector<E>{{0, 0, 3, 1}, {1, 0, 3, 1}});
  s.computed();
  const int64_t child = s.fork(1);
  CHECK(child == 3);
  CHECK(f.cache.pool().ref_count(f.cache.blocks(1)[0]) == 2);  // the child shares the parent's block
  for (int64_t q : {int64_t(0), int64_t(1), child}) s.append(q, 7);
  b = &s.schedule();
  CHECK(entries(*b) == std::vector<E>{{0, 3, 1, 1}, {1, 3, 1, 1}, {3, 3, 1, 1}});  // fork after its parent
  CHECK(s.num_waiting() == 1);
  s.computed();
  s.finish(0);
  s.append(1, 7);
  s.append(3, 7);
  b = &s.schedule();
  CHECK(entries(*b) == std::vector<E>{{1, 4, 1, 1}, {3, 4, 1, 1}, {2, 0, 3, 1}});
  CHECK(s.stats().peak_running == 3);
}

TEST_CASE("preemption: admissions are undone first, then the newest running sequence is recomputed later") {
  Fixture f(3, 4, opts(100, 8));
  Scheduler& s = f.s;
  for (int i = 0; i < 3; ++i) s.add(prompt(4, 10 * i + 1));
  auto* b = &s.schedule();
  CHECK(b->entries.size() == 3);  // one block each
  s.computed();
  append_done(s, *b);
  b = &s.schedule();  // each needs a second block: 2 and then 1 are preempted
  CHECK(entries(*b) == std::vector<E>{{0, 4, 1, 1}});
  CHECK(s.stats().preemptions == 2);
  CHECK(s.num_running() == 1);
  CHECK(s.num_waiting() == 2);
  s.computed();
  s.append(0, 7);
  // 1 adopts its cached first block and needs one more for its generated token: no room, so it is not
  // admitted and nobody else is preempted
  b = &s.schedule();
  CHECK(entries(*b) == std::vector<E>{{0, 5, 1, 1}});
  CHECK(s.stats().preemptions == 2);
  s.computed();
  s.finish(0);
  b = &s.schedule();  // 1 comes back before 2 (front of the queue), adopts its cached block, recomputes its token
  CHECK(entries(*b) == std::vector<E>{{1, 4, 1, 1}});  // 2 would need two more blocks: it waits
  CHECK(s.stats().prefix_hit_tokens == 4);
  CHECK(s.tokens(1).size() == 5);  // no token was lost
  s.computed();
  s.finish(1);
  CHECK(entries(s.schedule()) == std::vector<E>{{2, 0, 5, 1}});  // its cached block was evicted: computed again
}

TEST_CASE("the same calls give the same schedule") {
  auto trace = [] {
    Fixture f(7, 4, opts(6, 3));
    Scheduler& s = f.s;
    for (int i = 0; i < 6; ++i) s.add(prompt(3 + i, 50 * i));
    std::vector<std::vector<E>> t;
    for (int step = 0; step < 40 && !s.idle(); ++step) {
      const auto& b = s.schedule();
      t.push_back(entries(b));
      s.computed();
      for (const auto& x : b.entries)
        if (x.logits() > 0) {
          if (s.tokens(x.seq).size() >= 12) s.finish(x.seq);
          else s.append(x.seq, int32_t(x.seq + step));
        }
    }
    return std::make_pair(t, s.stats().preemptions);
  };
  const auto a = trace(), b = trace();
  CHECK(a.first == b.first);
  CHECK(a.second == b.second);
  CHECK(a.second > 0);
}

TEST_CASE("speculative drafts: k + 1 logit rows, rollback keeps the accepted tokens") {
  Fixture f(16, 4, opts(64, 4));
  Scheduler& s = f.s;
  s.add(prompt(6, 1));
  s.schedule();
  s.computed();
  s.append(0, 100);
  const std::vector<int32_t> draft = {101, 102, 103};
  s.propose(0, draft);
  const auto& b = s.schedule();
  CHECK(entries(b) == std::vector<E>{{0, 6, 4, 4}});
  CHECK(b.tokens == std::vector<int32_t>{100, 101, 102, 103});
  CHECK(b.logit_rows == std::vector<int32_t>{0, 1, 2, 3});
  s.computed();
  CHECK(s.cache().length(0) == 10);
  s.rollback(0, 8);  // 100 and 101 accepted
  CHECK(s.cache().length(0) == 8);
  CHECK(s.tokens(0).size() == 8);
  s.append(0, 55);  // the verifier's token after the accepted draft
  CHECK(entries(s.schedule()) == std::vector<E>{{0, 8, 1, 1}});
  CHECK_THROWS_AS(s.rollback(0, 3), Error);  // below the verified tokens
}

TEST_CASE("misuse is an Error") {
  Fixture f(4, 4, opts(8, 2));
  Scheduler& s = f.s;
  CHECK_THROWS_AS(s.add({}), Error);
  CHECK_THROWS_AS(s.add(prompt(2, 1), 3), Error);  // more samples than --max-seqs
  s.add(prompt(2, 1));
  CHECK_THROWS_AS(s.append(0, 1), Error);  // its prompt is not computed
  CHECK_THROWS_AS(s.finish(5), Error);
  CHECK_THROWS_AS(Scheduler(f.cache, opts(0, 1)), Error);
  CHECK_THROWS_AS(Scheduler(f.cache, opts(1, 0)), Error);
  Fixture tiny(1, 4, opts(8, 2));
  tiny.s.add(prompt(6, 1));  // needs two blocks, the pool has one
  CHECK_THROWS_AS(tiny.s.schedule(), Error);
}
