// Reading a connection's state from the kernel's TCP table.
#include "server/peer_connection.h"

#include <gtest/gtest.h>

using namespace dsinfer;

TEST(PeerConnection, WritesEndpointsAsTheKernelTableDoes) {
  // The address's bytes as a host-order (little-endian) word, as /proc/net/tcp prints them.
  EXPECT_EQ(proc_net_endpoint("127.0.0.1", 8000), "0100007F:1F40");
  EXPECT_EQ(proc_net_endpoint("10.1.2.3", 50000), "0302010A:C350");
  EXPECT_EQ(proc_net_endpoint("::1", 80), "00000000000000000000000001000000:0050");
  EXPECT_EQ(proc_net_endpoint("not an address", 80), "");
}

TEST(PeerConnection, FindsTheConnectionByBothEndpointsAndReadsItsState) {
  const std::string table =
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
      "   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n"
      "   1: 0100007F:1F40 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1\n"
      "   2: 0100007F:1F40 0302010A:C350 08 00000000:00000000 00:00000000 00000000     0        0 3 1\n";
  EXPECT_EQ(tcp_state(table, "0100007F:1F40 0100007F:C350"), 0x01);  // established
  EXPECT_EQ(tcp_state(table, "0100007F:1F40 0302010A:C350"), 0x08);  // another client, same port: CLOSE_WAIT
  EXPECT_EQ(tcp_state(table, "0100007F:1F40 0100007F:C351"), -1);
  EXPECT_EQ(tcp_state("garbage\nnot a table line\n", "0100007F:1F40 0100007F:C350"), -1);
}
