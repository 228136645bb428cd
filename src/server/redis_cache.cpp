// The Redis response cache (hiredis, synchronous). Entries are written with SET ... EX so Redis
// expires them; several server replicas pointed at one Redis share their answers. One
// connection behind a mutex: a cache operation is a loopback round trip, far shorter than the
// generation it saves. A broken connection is reopened on the next use.
#include <hiredis/hiredis.h>

#include <memory>
#include <mutex>

#include "core/error.h"
#include "core/log.h"
#include "server/response_cache.h"

namespace dsinfer {
namespace {

struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextFree>;
using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;

class RedisCache : public ResponseCache {
 public:
  RedisCache(std::string host, int port, int ttl_seconds) : host_(std::move(host)), port_(port), ttl_(ttl_seconds) {
    std::lock_guard lock(mutex_);
    try {
      connect();
    } catch (const Error& e) {
      // The server still starts: requests are served without the cache until Redis is back.
      log_warn("response cache: ", e.what());
    }
  }

  std::optional<std::string> get(const std::string& key) override {
    std::lock_guard lock(mutex_);
    ReplyPtr r = command({"GET", key});
    if (r->type == REDIS_REPLY_NIL) return std::nullopt;
    if (r->type != REDIS_REPLY_STRING) fail("redis GET: unexpected reply type ", r->type);
    return std::string(r->str, r->len);
  }

  void put(const std::string& key, const std::string& value) override {
    std::lock_guard lock(mutex_);
    ReplyPtr r = command({"SET", key, value, "EX", std::to_string(ttl_)});
    if (r->type != REDIS_REPLY_STATUS) fail("redis SET: unexpected reply type ", r->type);
  }

  std::string describe() const override { return "redis://" + host_ + ":" + std::to_string(port_); }

 private:
  void connect() {
    timeval timeout{1, 0};
    ContextPtr c(redisConnectWithTimeout(host_.c_str(), port_, timeout));
    if (!c) fail("redis ", describe(), ": cannot allocate a connection");
    if (c->err) fail("redis ", describe(), ": ", c->errstr);
    redisSetTimeout(c.get(), timeout);
    ctx_ = std::move(c);
  }

  // Runs one command (binary-safe arguments); on an I/O error drops the connection and throws.
  ReplyPtr command(const std::vector<std::string>& args) {
    if (!ctx_) connect();
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    ReplyPtr r(static_cast<redisReply*>(redisCommandArgv(ctx_.get(), static_cast<int>(args.size()), argv.data(), lens.data())));
    if (!r) {
      std::string why = ctx_->errstr;
      ctx_.reset();
      fail("redis ", describe(), ": ", why);
    }
    if (r->type == REDIS_REPLY_ERROR) fail("redis ", args[0], ": ", std::string(r->str, r->len));
    return r;
  }

  std::string host_;
  int port_, ttl_;
  std::mutex mutex_;
  ContextPtr ctx_;
};

}  // namespace

std::unique_ptr<ResponseCache> make_redis_cache(const std::string& host, int port, int ttl_seconds) {
  return std::make_unique<RedisCache>(host, port, ttl_seconds);
}

}  // namespace dsinfer
