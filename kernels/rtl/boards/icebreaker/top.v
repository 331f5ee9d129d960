// SPDX-License-Identifier: MIT OR Apache-2.0
// rigworker on an iCEBreaker (Lattice iCE40 UP5K): the Icarus SHA-256d core on the 12 MHz
// oscillator, its UART on the board's FTDI channel B at 115200 baud (12e6 / 115200 ≈ 104
// clocks per bit), a hit = 32 zero bits as real boards, the nonce counter from 0.
module top (
    input  wire CLK,   // 12 MHz
    input  wire RX,    // from the host (FTDI TX)
    output wire TX,    // to the host (FTDI RX)
    output wire LEDR_N,
    output wire LEDG_N
);
  // Power-on reset: the iCE40 has no reset pin worth using.
  reg [7:0] por = 8'd0;
  wire rst = ~&por;
  always @(posedge CLK) if (rst) por <= por + 1'b1;
  wire hashing;
  icarus_sha256d #(
      .CLKS_PER_BIT(104),
      .ZERO_BITS(32),
      .RPC(1),
      .FIFO_REPLIES(4)
  ) core (
      .clk(CLK), .rst(rst), .uart_rx(RX), .uart_tx(TX), .start_nonce(32'd0), .hashing(hashing));
  assign LEDG_N = ~hashing;  // green while searching
  assign LEDR_N = 1'b1;
endmodule
