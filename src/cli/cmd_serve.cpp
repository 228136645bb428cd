// dsinfer serve: the OpenAI-compatible HTTP server over one model (see docs/api.md).
#include <csignal>
#include <cstdlib>
#include <atomic>
#include <future>
#include <thread>
#include <pthread.h>

#include "cli/command.h"
#include "cli/load_flags.h"
#include "cli/speculative_flags.h"
#include "core/error.h"
#include "core/log.h"
#include "server/http_server.h"

namespace dsinfer {
namespace {

void validate(const ServerOptions& o) {
  if (o.port < 0 || o.port > 65535) fail("--port must be 0..65535, got ", o.port);
  if (o.max_running < 1) fail("--max-running must be at least 1, got ", o.max_running);
  if (o.max_waiting < 0) fail("--max-waiting must not be negative, got ", o.max_waiting);
  if (o.kv_cache_tokens < 0) fail("--kv-cache-tokens must not be negative, got ", o.kv_cache_tokens);
  if (o.max_batched_tokens < 1) fail("--max-batched-tokens must be at least 1, got ", o.max_batched_tokens);
  if (!(o.request_timeout_s > 0)) fail("--request-timeout must be positive, got ", o.request_timeout_s);
  if (!(o.drain_timeout_s >= 0)) fail("--drain-timeout must not be negative, got ", o.drain_timeout_s);
  if (o.max_body_bytes < 1) fail("--max-body-bytes must be at least 1");
  check_speculative(o.speculative);
}

void run_serve(const ServerOptions& o) {
  validate(o);
  // SIGTERM / SIGINT are taken by one thread with sigwait, so they are blocked here, before any
  // thread starts, and every thread inherits the mask. A client that vanishes must cost a failed
  // write, not the process: SIGPIPE is ignored.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  ServerContext ctx(o);
  if (!o.response_cache.empty()) {
    ctx.cache = make_response_cache(o.response_cache, o.response_cache_ttl_s);
    log_info("response cache: ", ctx.cache->describe(), ", TTL ", o.response_cache_ttl_s, " s");
  }
  ApiServer server(ctx);
  server.start();

  // The watcher polls so that it can be told to quit when loading fails.
  std::promise<int> stop;
  std::atomic<bool> quit{false};
  std::thread signals([&] {
    timespec poll{0, 200'000'000};
    while (!quit.load()) {
      int sig = sigtimedwait(&stop_signals, nullptr, &poll);
      if (sig < 0) continue;
      // While loading there is nothing to drain: leave at once rather than after a long load.
      if (ctx.state.load() == ServerState::Loading) {
        log_info("signal ", sig, " while loading: exiting");
        std::_Exit(0);
      }
      stop.set_value(sig);
      return;
    }
  });
  struct Join {
    std::atomic<bool>& quit;
    std::thread& t;
    ~Join() {
      quit = true;
      t.join();
    }
  } join{quit, signals};

  ctx.model = load_served_model(o);
  ctx.state = ServerState::Ready;
  log_info("ready: http://", o.host, ":", server.port(), "/v1 serving '", ctx.model->name, "'");
  int sig = stop.get_future().get();
  log_info("signal ", sig, ": stop accepting requests and drain");
  server.drain_and_stop();
}

CommandRegistration reg({"serve", "Serve a model over an OpenAI-compatible HTTP API", [](CLI::App& app) {
  auto o = std::make_shared<ServerOptions>();
  app.add_option("--model", o->model_dir, "Hugging Face model directory")->required();
  app.add_option("--device", o->device, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_flag("--enforce-eager", o->enforce_eager, "Decode op by op, without CUDA graphs");
  add_tensor_parallel_flags(app, o->tensor_parallel, o->model_options);
  add_model_flags(app, o->model_options);
  app.add_option("--host", o->host, "Address to listen on")->capture_default_str();
  app.add_option("--port", o->port, "Port to listen on (0: any free port)")->capture_default_str();
  app.add_option("--served-model-name", o->served_model_name, "Model name in the API (default: the directory's name)");
  app.add_option("--api-key", o->api_key, "Require Authorization: Bearer KEY on /v1 routes");
  app.add_option("--max-running", o->max_running, "Sequences in the running batch")->capture_default_str();
  app.add_option("--max-waiting", o->max_waiting, "Queued requests before 429")->capture_default_str();
  app.add_option("--gpu-memory-utilization", o->gpu_memory_utilization,
                 "On a GPU without --kv-cache-tokens: share of its memory for weights, workspace and KV cache")
      ->capture_default_str();
  app.add_option("--kv-cache-tokens", o->kv_cache_tokens,
                 "KV cache size in tokens (0: room for max-running x 2048 tokens within 2 GiB)")
      ->capture_default_str();
  app.add_option("--max-batched-tokens", o->max_batched_tokens, "Token budget of one engine step")->capture_default_str();
  add_block_size_flag(app, o->block_size);
  add_speculative_flags(app, o->speculative);
  app.add_option("--speculative-disable-by-batch-size", o->speculative_disable_by_batch_size,
                 "No drafts while this many sequences or more run (0: draft at any batch)")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  app.add_option("--request-timeout", o->request_timeout_s, "Seconds before a request is cancelled")->capture_default_str();
  app.add_option("--drain-timeout", o->drain_timeout_s, "Seconds running requests get to finish on SIGTERM")
      ->capture_default_str();
  app.add_option("--max-body-bytes", o->max_body_bytes, "Largest request body (413 above)")->capture_default_str();
  app.add_option("--response-cache", o->response_cache, "memory or redis://HOST:PORT: answer repeated deterministic requests from a cache");
  app.add_option("--response-cache-ttl", o->response_cache_ttl_s, "Seconds a cached response lives")->capture_default_str();
  app.add_option("--reasoning-parser", o->reasoning_parser,
                 "deepseek-r1: <think> text as reasoning_content; none; auto: on when the chat template opens <think>")
      ->check(CLI::IsMember({"auto", "deepseek-r1", "none"}))
      ->capture_default_str();
  app.add_option("--tool-call-parser", o->tool_call_parser,
                 "deepseek: the answer's DeepSeek tool-call blocks as message.tool_calls when a request has tools; "
                 "none; auto: on when the chat template writes them")
      ->check(CLI::IsMember({"auto", "deepseek", "none"}))
      ->capture_default_str();
  app.callback([o] { run_serve(*o); });
}});

}  // namespace
}  // namespace dsinfer
