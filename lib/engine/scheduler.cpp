#include "lib/engine/scheduler.h"

#include <algorithm>

#include "lib/core/error.h"

namespace llmopt::engine {

Scheduler::Scheduler(kv::PagedCache& cache, SchedulerOptions o) : cache_(&cache), opt_(o) {
  if (o.max_batched_tokens < 1) fail("--max-batched-tokens must be >= 1, got {}", o.max_batched_tokens);
  if (o.max_seqs < 1) fail("--max-seqs must be >= 1, got {}", o.max_seqs);
}

Scheduler::Seq& Scheduler::get(int64_t seq) {
  if (seq < 0 || seq >= int64_t(seqs_.size()) || !seqs_[size_t(seq)].live) fail("scheduler: no sequence {}", seq);
  return seqs_[size_t(seq)];
}

int64_t Scheduler::add(std::vector<int32_t> prompt, int64_t width) {
  if (prompt.empty()) fail("scheduler: empty prompt (no tokens)");
  if (width < 1 || width > opt_.max_seqs) fail("scheduler: {} samples of one prompt, --max-seqs is {}", width, opt_.max_seqs);
  const int64_t id = int64_t(seqs_.size());
  Seq s;
  s.prompt_len = int64_t(prompt.size());
  s.tokens = std::move(prompt);
  s.width = width;
  s.family = id;
  s.live = true;
  seqs_.push_back(std::move(s));
  waiting_.push_back(id);
  return id;
}

void Scheduler::evict(int64_t seq) {
  Seq& s = get(seq);
  if (s.slot >= 0) cache_->free_sequence(s.slot);
  s.slot = -1;
  s.computed = 0;
}

// True when a sequence already in this step completes the block that `c` would compute next, with the
// same tokens up to its end: c then waits one step and adopts it instead of computing it twice.
bool Scheduler::computes_next_block(const Seq& c) const {
  const int64_t end = c.computed + cache_->pool().block_size();
  if (end >= int64_t(c.tokens.size())) return false;  // the block holding the last token is never adopted
  for (const Entry& e : batch_.entries) {
    const Seq& x = get(e.seq);
    if (e.start < end && end <= e.start + e.n && std::equal(c.tokens.begin(), c.tokens.begin() + end, x.tokens.begin()))
      return true;
  }
  return false;
}

// Running sequences take the budget first, then up to max_admit waiting ones; false (admissions undone)
// when the cache cannot hold the step.
bool Scheduler::try_plan(int64_t max_admit, int64_t& admitted) {
  chunks_.clear();
  batch_.entries.clear();
  int64_t budget = opt_.max_batched_tokens, width = 0;
  auto take = [&](int64_t id) {
    Seq& s = get(id);
    const int64_t n = std::min(int64_t(s.tokens.size()) - s.computed, budget);
    if (n <= 0) return;
    chunks_.push_back({s.slot, n});
    batch_.entries.push_back({id, s.computed, n, std::clamp(first_logit(s), s.computed, s.computed + n)});
    budget -= n;
  };
  for (int64_t id : running_) {
    take(id);
    width += get(id).width;
  }
  admitted = 0;
  while (admitted < max_admit && admitted < int64_t(waiting_.size()) && budget > 0) {
    Seq& s = get(waiting_[size_t(admitted)]);
    if (width + s.width > opt_.max_seqs) break;
    s.slot = cache_->add_sequence();
    s.computed = opt_.prefix_caching ? cache_->adopt_prefix(s.slot, s.tokens) : 0;
    if (opt_.prefix_caching && computes_next_block(s)) {  // FCFS: it and everyone after it wait a step
      evict(waiting_[size_t(admitted)]);
      break;
    }
    take(waiting_[size_t(admitted)]);
    width += s.width;
    ++admitted;
  }
  if (cache_->plan(chunks_, batch_.attention)) return true;
  for (int64_t i = 0; i < admitted; ++i) evict(waiting_[size_t(i)]);
  return false;
}

const Scheduler::Batch& Scheduler::schedule() {
  batch_.entries.clear();
  batch_.tokens.clear();
  batch_.logit_rows.clear();
  if (idle()) return batch_;
  int64_t max_admit = int64_t(waiting_.size()), admitted = 0;
  while (!try_plan(max_admit, admitted)) {
    if (admitted > 0) {  // admit fewer before preempting anyone
      max_admit = admitted - 1;
      continue;
    }
    if (running_.empty()) break;
    const int64_t victim = running_.back();  // the newest running sequence is recomputed later
    running_.pop_back();
    evict(victim);
    waiting_.push_front(victim);
    ++stats_.preemptions;
    max_admit = 0;
  }
  const size_t n_running = running_.size();
  for (int64_t i = 0; i < admitted; ++i) {
    stats_.prefix_hit_tokens += batch_.entries[n_running + size_t(i)].start;
    running_.push_back(waiting_.front());
    waiting_.pop_front();
  }
  if (batch_.entries.empty())
    fail("kv cache: {} blocks of {} tokens cannot hold the next step of any sequence (raise --kv-blocks or --kv-memory)",
         cache_->pool().num_blocks(), cache_->pool().block_size());
  fill_batch();
  return batch_;
}

void Scheduler::fill_batch() {
  for (const Entry& e : batch_.entries) {
    const Seq& s = get(e.seq);
    const int64_t row0 = int64_t(batch_.tokens.size());
    batch_.tokens.insert(batch_.tokens.end(), s.tokens.begin() + e.start, s.tokens.begin() + e.start + e.n);
    for (int64_t p = e.first_logit; p < e.start + e.n; ++p) batch_.logit_rows.push_back(int32_t(row0 + p - e.start));
  }
  ++stats_.steps;
  stats_.peak_running = std::max(stats_.peak_running, int64_t(running_.size()));
  const auto& pool = cache_->pool();
  const int64_t in_use = pool.num_blocks() - pool.num_free(), bs = pool.block_size();
  stats_.peak_blocks = std::max(stats_.peak_blocks, in_use);
  // slots written: each in-use block's fill, counted once however many sequences share it
  fill_.assign(size_t(pool.num_blocks()), 0);
  for (int64_t id : running_) {
    const auto& blocks = cache_->blocks(get(id).slot);
    const int64_t len = cache_->length(get(id).slot);
    for (size_t i = 0; i < blocks.size(); ++i)
      fill_[size_t(blocks[i])] = std::max(fill_[size_t(blocks[i])], std::min(bs, len - int64_t(i) * bs));
  }
  int64_t used = 0;
  for (int64_t f : fill_) used += f;
  stats_.allocated_slot_steps += in_use * bs;
  stats_.used_slot_steps += used;
}

void Scheduler::computed() {
  for (const Entry& e : batch_.entries) {
    Seq& s = get(e.seq);
    s.computed = e.start + e.n;
    if (opt_.prefix_caching) {  // draft tokens are not sealed: they may be rolled back
      const int64_t verified = std::min(s.computed, int64_t(s.tokens.size()) - s.draft);
      cache_->seal(s.slot, std::span(s.tokens).first(size_t(verified)));
    }
  }
}

void Scheduler::append(int64_t seq, int32_t token) {
  Seq& s = get(seq);
  if (s.computed != int64_t(s.tokens.size()) || s.draft != 0)
    fail("scheduler: sequence {} gets a token before its pending ones are computed", seq);
  s.tokens.push_back(token);
}

void Scheduler::propose(int64_t seq, std::span<const int32_t> draft) {
  Seq& s = get(seq);
  if (s.draft != 0 || s.computed != int64_t(s.tokens.size()) - 1)
    fail("scheduler: sequence {} takes a draft only after a token was appended", seq);
  s.tokens.insert(s.tokens.end(), draft.begin(), draft.end());
  s.draft = int64_t(draft.size());
}

void Scheduler::rollback(int64_t seq, int64_t keep) {
  Seq& s = get(seq);
  if (keep < int64_t(s.tokens.size()) - s.draft || keep > int64_t(s.tokens.size()))
    fail("scheduler: sequence {} cannot keep {} of {} tokens ({} are drafts)", seq, keep, s.tokens.size(), s.draft);
  s.tokens.resize(size_t(keep));
  s.draft = 0;
  if (s.computed > keep) {
    s.computed = keep;
    if (s.slot >= 0) cache_->truncate(s.slot, keep);
  }
}

int64_t Scheduler::fork(int64_t seq) {
  Seq& parent = get(seq);
  if (parent.slot < 0) fail("scheduler: fork of sequence {}, which is not running", seq);
  Seq child = parent;
  child.slot = cache_->fork(parent.slot);
  child.width = 1;
  parent.width = 1;
  const int64_t id = int64_t(seqs_.size()), family = parent.family;
  seqs_.push_back(std::move(child));
  // after the family's last running member, so the schedule keeps arrival order
  auto it = std::find_if(running_.rbegin(), running_.rend(), [&](int64_t r) { return seqs_[size_t(r)].family == family; });
  running_.insert(it.base(), id);
  return id;
}

void Scheduler::finish(int64_t seq) {
  evict(seq);
  std::erase(running_, seq);
  std::erase(waiting_, seq);
  seqs_[size_t(seq)].live = false;
  seqs_[size_t(seq)].tokens = {};
}

}  // namespace llmopt::engine
