#include "runtime/block_manager.h"

#include <gtest/gtest.h>

#include "core/error.h"

using namespace dsinfer;

TEST(BlockManager, AllocatesUntilFullAndReusesReleasedBlocks) {
  BlockManager m(3, 4);
  auto a = m.allocate(), b = m.allocate(), c = m.allocate();
  ASSERT_TRUE(a && b && c);
  EXPECT_FALSE(m.allocate());
  EXPECT_EQ(m.used(), 3);
  m.release(*b);
  EXPECT_EQ(m.allocate(), b);
  EXPECT_THROW({ m.release(*a); m.release(*a); }, Error);
}

TEST(BlockManager, SharesCachedPrefixBlocksAndEvictsThemOnlyWhenMemoryIsNeeded) {
  BlockManager m(2, 4);
  const int toks[4] = {1, 2, 3, 4}, other[4] = {1, 2, 3, 5};
  auto b = m.allocate();
  uint64_t h = BlockManager::block_hash(0, toks, 4);
  m.register_full(*b, h, 0, toks);
  EXPECT_EQ(m.lookup(h, 0, toks), b);  // shared: ref count 2
  EXPECT_FALSE(m.lookup(BlockManager::block_hash(0, other, 4), 0, other));
  EXPECT_FALSE(m.lookup(h, 1, toks));  // same tokens after another prefix is another block
  m.release(*b);
  m.release(*b);
  EXPECT_EQ(m.used(), 0);
  EXPECT_EQ(m.lookup(h, 0, toks), b);  // still cached after its users left
  m.release(*b);
  auto x = m.allocate(), y = m.allocate();  // the cached block is evicted for the second
  ASSERT_TRUE(x && y);
  EXPECT_FALSE(m.lookup(h, 0, toks));
}
