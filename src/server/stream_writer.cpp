#include "server/stream_writer.h"

#include <algorithm>

#include "core/log.h"
#include "server/api_error.h"
#include "server/request_accounting.h"

namespace dsinfer {
namespace {

// How long one wait for tokens may last before the writer looks at its deadline again.
constexpr auto kPollInterval = std::chrono::milliseconds(250);

class StreamWriter {
 public:
  StreamWriter(ServerContext& ctx, StreamJob job)
      : ctx_(ctx),
        job_(std::move(job)),
        open_(static_cast<int>(job_.builders.size())),
        echoed_(job_.builders.size(), false) {}

  ~StreamWriter() {
    // The stream ended without its [DONE]: the client went away (or a write failed).
    if (!ended_) ctx_.metrics.count_request(Outcome::Cancelled);
  }

  // Called by httplib until it returns false or the sink is done; never throws into httplib.
  bool step(httplib::DataSink& sink) {
    try {
      return next(sink);
    } catch (const std::exception& e) {
      log_warn("stream ", job_.meta.id, " failed: ", e.what());
      return false;
    }
  }

 private:
  bool next(httplib::DataSink& sink) {
    if (!started_) {
      started_ = true;
      if (job_.meta.endpoint == Endpoint::Chat) {
        std::string out;
        for (size_t i = 0; i < job_.builders.size(); ++i) {
          StreamDelta first;
          first.index = static_cast<int>(i);
          first.first = true;
          out += sse_event(chunk_json(job_.meta, first, job_.include_usage));
        }
        return write(sink, out);
      }
    }
    auto now = Clock::now();
    if (job_.peer.closed()) {  // gone before a write could fail (queued, or between tokens)
      job_.generation->cancel();
      return false;
    }
    if (now >= job_.deadline) {
      job_.generation->cancel();
      ctx_.metrics.count_request(Outcome::Timeout);
      return end_with_error(sink, ApiError(408, "timeout_error", "request timed out", "", "request_timeout"));
    }
    std::optional<GenerationUpdate> u = job_.generation->take(std::min(job_.deadline, now + kPollInterval));
    if (!u) return true;
    StreamDelta d = job_.builders.at(u->index).add(*u);
    d.index = u->index;
    d.want_logprobs = job_.want_logprobs;
    if (job_.meta.echo && !echoed_[u->index]) {  // the prompt begins the choice's first piece
      echoed_[u->index] = true;
      d.echo = true;
      d.prompt_ids = job_.builders[u->index].result().prompt_ids;
      d.prompt_logprobs = u->prompt_logprobs;
    }
    bool visible = d.echo || !d.content.empty() || !d.reasoning.empty() || !d.tool_calls.empty() ||
                   (d.want_logprobs && !d.logprobs.empty()) ||
                   (job_.meta.return_token_ids && !d.tokens.empty());
    if (visible && !write(sink, sse_event(chunk_json(job_.meta, d, job_.include_usage)))) return false;
    if (!u->finished) return true;
    if (u->reason == FinishReason::Cancelled) {
      ctx_.metrics.count_request(Outcome::Unavailable);
      return end_with_error(sink, ApiError(503, "service_unavailable", "the request was cancelled: the server is shutting down"));
    }
    if (u->reason == FinishReason::Error) {
      ctx_.metrics.count_request(Outcome::Error);
      return end_with_error(sink, ApiError(500, "server_error", "generation failed: " + u->error));
    }
    StreamDelta last;
    last.index = u->index;
    last.finish_reason = job_.builders[u->index].result().finish_reason;
    const std::string closing = sse_event(chunk_json(job_.meta, last, job_.include_usage));
    if (--open_ > 0) return write(sink, closing);
    return end_ok(sink, closing);
  }

  // The last choice ended with `closing`: the usage and [DONE] follow it.
  bool end_ok(httplib::DataSink& sink, std::string out) {
    std::vector<CompletionResult> choices;
    for (const ResultBuilder& b : job_.builders) choices.push_back(b.result());
    if (job_.include_usage) out += sse_event(usage_chunk_json(job_.meta, choices));
    out += sse_done();
    record_success(ctx_, *job_.generation, job_.cache_request, choices.front());
    ended_ = true;
    if (!write(sink, out)) return false;
    sink.done();
    return true;
  }

  bool end_with_error(httplib::DataSink& sink, const ApiError& e) {
    ended_ = true;
    if (!write(sink, sse_event(error_json(e)) + sse_done())) return false;
    sink.done();
    return true;
  }

  static bool write(httplib::DataSink& sink, const std::string& s) { return sink.write(s.data(), s.size()); }

  ServerContext& ctx_;
  StreamJob job_;
  int open_;  // choices not finished yet
  std::vector<bool> echoed_;  // per choice: its echo has been written
  bool started_ = false;
  bool ended_ = false;
};

}  // namespace

void start_stream(ServerContext& ctx, StreamJob job, httplib::Response& res) {
  auto writer = std::make_shared<StreamWriter>(ctx, std::move(job));
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider("text/event-stream",
                                   [writer](size_t, httplib::DataSink& sink) { return writer->step(sink); });
}

std::string result_as_sse(const ResponseMeta& meta, const CompletionResult& r, bool include_usage, bool want_logprobs) {
  std::string out;
  if (meta.endpoint == Endpoint::Chat) {
    StreamDelta first;
    first.first = true;
    out += sse_event(chunk_json(meta, first, include_usage));
  }
  StreamDelta all;
  all.content = r.content;
  all.reasoning = r.reasoning;
  all.tokens = r.output_ids;
  all.logprobs = r.logprobs;
  all.tool_calls = r.tool_calls;
  all.want_logprobs = want_logprobs;
  all.echo = meta.echo;
  all.prompt_ids = r.prompt_ids;
  all.prompt_logprobs = r.prompt_logprobs;
  out += sse_event(chunk_json(meta, all, include_usage));
  StreamDelta last;
  last.finish_reason = r.finish_reason;
  out += sse_event(chunk_json(meta, last, include_usage));
  if (include_usage) out += sse_event(usage_chunk_json(meta, {r}));
  return out + sse_done();
}

}  // namespace dsinfer
