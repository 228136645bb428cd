// The arena's layer scopes: what a layer takes after a mark is handed back by rewind, so the next
// layer reuses the same memory and a pass holds one layer's scratch at a time.
#include <gtest/gtest.h>

#include "backend/arena.h"

using namespace dsinfer;

TEST(Arena, RewindHandsBackWhatFollowedTheMark) {
  auto backend = make_cpu_backend();
  Arena arena(*backend);
  const Tensor kept = arena.tensor(DType::F32, {1000});
  const Arena::Mark mark = arena.mark();
  const Tensor first = arena.tensor(DType::F32, {4096});
  arena.tensor(DType::F32, {int64_t{20} << 20});  // past the first chunk: a second one
  const size_t capacity = arena.capacity();
  arena.rewind(mark);
  const Tensor again = arena.tensor(DType::F32, {4096});
  EXPECT_EQ(again.data, first.data);
  EXPECT_NE(again.data, kept.data);
  arena.tensor(DType::F32, {int64_t{20} << 20});
  EXPECT_EQ(arena.capacity(), capacity);  // the second chunk was reused, not grown again
}
