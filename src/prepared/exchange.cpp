#include "prepared/exchange.hpp"

#include "protocol/encoder.hpp"

namespace keel::prepared {

namespace {
bool ends_exchange(Expect k) { return k == Expect::sync || k == Expect::query || k == Expect::query_dealloc; }
}  // namespace

bool Exchange::only_synthesized() const {
  if (empty()) return false;
  for (size_t i = head_; i < entries_.size(); ++i)
    if (!synthesized(entries_[i].kind)) return false;
  return true;
}

void Exchange::clear() {
  entries_.clear();
  head_ = 0;
  skipping_ = false;
}

void Exchange::compact() {
  if (head_ * 2 < entries_.size()) return;
  entries_.erase(entries_.begin(), entries_.begin() + long(head_));
  head_ = 0;
}

void Exchange::emit_synthesized(std::string& out) {
  protocol::Encoder enc(out);
  while (!empty() && synthesized(head().kind)) {
    enc.begin(head().kind == Expect::synth_parse ? '1' : '3').end();
    pop();
  }
}

void Exchange::undo(Entry& e, ServerStatements& server) {
  if (!e.d) return;  // a plain message: nothing to undo
  EntryDetail& d = *e.d;
  auto client_has = [&]() {
    const StatementPtr* p = client_->find(d.client_name);
    return p && *p == d.def;
  };
  switch (e.kind) {
    case Expect::parse_new:
      if (client_has()) client_->erase(d.client_name);
      if (!e.orphan) server.erase(*d.def, d.server_name);
      break;
    case Expect::synth_parse:
      if (client_has()) client_->erase(d.client_name);
      break;
    case Expect::synth_close:
      if (!client_->find(d.client_name)) client_->set(d.client_name, d.def);
      break;
    case Expect::inj_parse:
      server.erase(*d.def, d.server_name);
      break;
    case Expect::inj_close:
      if (!d.server_name.empty()) server.orphans.push_back(std::move(d.server_name));
      break;
    default:
      break;
  }
}

void Exchange::all_deallocated(ServerStatements& server) {
  server.clear();
  client_->clear();
}

Verdict Exchange::match(char type, std::string_view body, ServerStatements& server, std::string& before,
                        std::string& after) {
  Verdict v;
  if (type == 'N' || type == 'A' || type == 'S') return v;  // asynchronous: match nothing
  if (deallocates_all(type, body)) all_deallocated(server);
  if (!skipping_) emit_ready(before);
  if (empty()) return v;
  if (skipping_) {
    if (type != 'Z') return v;
    // The Sync that ends the skip: everything before it got no response. Undo last first.
    size_t sync = head_;
    while (sync < entries_.size() && entries_[sync].kind != Expect::sync) ++sync;
    for (size_t i = std::min(sync, entries_.size()); i > head_; --i) undo(entries_[i - 1], server);
    size_t stop = std::min(sync + 1, entries_.size());
    while (head_ < stop && !empty()) pop();
    skipping_ = false;
    emit_ready(after);
    return v;
  }
  Entry& e = head();
  bool done = answered_by(e.kind, type), error = false;
  switch (e.kind) {
    case Expect::parse:
    case Expect::parse_new:
      if (done && e.orphan) server.orphans.push_back(e.d->server_name);
      break;
    case Expect::inj_parse:
    case Expect::inj_close:
      v.forward = !done;  // keel's own: its answer is swallowed
      break;
    case Expect::stand_in:
      if (type == 'E') {
        v.forward = false;
        if (e.d && e.d->error) protocol::Encoder(after).error_response(*e.d->error);
      }
      break;
    case Expect::query_dealloc:
      if (type == 'C' && ++e.seen == 1) v.forward = false;  // PREPARE's
      else if (type == 'C') client_->erase(e.d->client_name);
      break;
    default:
      break;  // keel's own answers (synth_*) were emitted above
  }
  if (type == 'E' && !ends_exchange(e.kind)) error = true;
  if (type == 'Z' && !done) {
    // Out of step (a message the server ignored): resynchronise on this ReadyForQuery.
    while (!empty() && !ends_exchange(head().kind)) pop();
    done = !empty();
  }
  if (error) {
    undo(e, server);
    pop();
    skipping_ = true;  // an extended-query message failed: the server skips to Sync
    return v;
  }
  if (done) {
    pop();
    emit_ready(after);
  }
  return v;
}

}  // namespace keel::prepared
