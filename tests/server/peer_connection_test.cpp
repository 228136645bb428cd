// Reading a connection's state from the kernel's TCP table.
#include "server/peer_connection.h"

#include <gtest/gtest.h>

using namespace dsinfer;

TEST(PeerConnection, FindsTheConnectionByItsPortsAndReadsItsState) {
  const std::string table =
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
      "   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n"
      "   1: 0100007F:1F40 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1\n"
      "   2: 0100007F:1F40 0100007F:C351 08 00000000:00000000 00:00000000 00000000     0        0 3 1\n";
  EXPECT_EQ(tcp_state(table, 8000, 50000), 0x01);  // established
  EXPECT_EQ(tcp_state(table, 8000, 50001), 0x08);  // the peer closed: CLOSE_WAIT
  EXPECT_EQ(tcp_state(table, 8000, 50002), -1);
  EXPECT_EQ(tcp_state("garbage\nnot a table line\n", 8000, 50000), -1);
}
