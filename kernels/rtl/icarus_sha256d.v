// SPDX-License-Identifier: MIT OR Apache-2.0
// rigworker: an Icarus-protocol SHA-256d miner, written from scratch (the open Icarus cores
// are GPLv3; this one is MIT OR Apache-2.0).
//
// Protocol (as cgminer/bfgminer `driver-icarus.c` speak it; 8N1 serial):
//  - The host writes 64 bytes: 0..31 the midstate of header bytes 0..63 as words H7..H0, each
//    big-endian; 32..51 ignored; 52..63 header bytes 72..75, 68..71, 64..67. Every complete
//    64-byte packet restarts the search at once, even mid-job. Bytes separated by more than
//    RX_GAP_BYTES byte-times start a new packet, so a partial write never shifts later jobs.
//  - The core counts W3 (the nonce word as SHA-256 reads it, = header bytes 76..79 read
//    big-endian) from `start_nonce` (0 on a board) to 2^32-1 and, for every W3 whose SHA-256d
//    digest word H7 has its top ZERO_BITS bits (of the hash read as a little-endian number)
//    zero, answers the 4 bytes W3 big-endian, i.e. header bytes 76..79. ZERO_BITS = 32 is what
//    real boards do (H7 == 0); simulations use fewer to get frequent hits.
//  - Nonce offset: 0. The reply is exactly the W3 that hit (no pipeline to subtract).
//  - At the end of the range it stops and says nothing; the host times out and sends work.
//  - Replies wait in a FIFO of FIFO_REPLIES (4 bytes each) and the search stalls rather than overflow
//    it, so hits close together are never lost or interleaved.
// Cost: one hash takes 2·64/RPC + 2 cycles; RPC (rounds per clock) trades area for speed.
module icarus_sha256d #(
    parameter integer CLKS_PER_BIT = 8,
    parameter integer ZERO_BITS = 32,
    parameter integer RPC = 1,
    parameter integer RX_GAP_BYTES = 64,
    parameter integer FIFO_REPLIES = 16
) (
    input  wire        clk,
    input  wire        rst,
    input  wire        uart_rx,
    output wire        uart_tx,
    input  wire [31:0] start_nonce,
    output wire        hashing
);
  // ---- receive 64-byte jobs ----
  wire       rx_valid;
  wire [7:0] rx_byte;
  uart_rx #(.CLKS_PER_BIT(CLKS_PER_BIT)) rx (
      .clk(clk), .rst(rst), .rx(uart_rx), .valid(rx_valid), .data(rx_byte));

  localparam integer GAP = CLKS_PER_BIT * 10 * RX_GAP_BYTES;
  reg [511:0] pkt;      // byte 0 in [511:504]
  reg [5:0]   nbytes;
  reg [31:0]  idle;
  reg         job_ready;
  always @(posedge clk) begin
    job_ready <= 1'b0;
    if (rst) begin
      nbytes <= 6'd0;
      idle <= 32'd0;
    end else if (rx_valid) begin
      pkt <= {pkt[503:0], rx_byte};
      nbytes <= nbytes + 1'b1;  // wraps to 0 after the 64th byte
      idle <= 32'd0;
      if (nbytes == 6'd63) job_ready <= 1'b1;
    end else if (nbytes != 6'd0) begin
      idle <= idle + 1'b1;
      if (idle == GAP) nbytes <= 6'd0;
    end
  end

  // The job, decoded from a completed packet (pkt as it stands the cycle after the 64th byte).
  wire [255:0] midstate = {pkt[287:256], pkt[319:288], pkt[351:320], pkt[383:352],
                           pkt[415:384], pkt[447:416], pkt[479:448], pkt[511:480]};
  wire [31:0]  w0 = pkt[31:0];   // header bytes 64..67, big-endian: bytes 60..63
  wire [31:0]  w1 = pkt[63:32];  // 68..71: bytes 56..59
  wire [31:0]  w2 = pkt[95:64];  // 72..75: bytes 52..55

  // ---- the search ----
  localparam [255:0] IV = {32'h6a09e667, 32'hbb67ae85, 32'h3c6ef372, 32'ha54ff53a,
                           32'h510e527f, 32'h9b05688c, 32'h1f83d9ab, 32'h5be0cd19};
  localparam [2:0] S_IDLE = 3'd0, S_HASH1 = 3'd1, S_HASH2 = 3'd2, S_CHECK = 3'd3;
  reg [2:0]   state;
  reg [255:0] mid_r;
  reg [95:0]  tail_r;
  reg [31:0]  nonce;
  reg         c_start;
  wire        c_busy, c_done;
  wire [255:0] c_out;
  reg         second;  // the compression in flight is the second hash
  // The core latches its inputs on `start`; they are muxed, not registered, to save area:
  // mid_r/tail_r/nonce change only when a first hash is started, and c_out holds the first
  // hash's result until the second one is done.
  wire [255:0] c_state = second ? IV : mid_r;
  wire [511:0] c_block = second ? {c_out, 32'h80000000, 192'd0, 32'd256}
                                : {tail_r, nonce, 32'h80000000, 320'd0, 32'd640};
  sha256_compress #(.RPC(RPC)) core (
      .clk(clk), .rst(rst), .start(c_start), .state_in(c_state), .block(c_block),
      .busy(c_busy), .done(c_done), .state_out(c_out));
  assign hashing = state != S_IDLE;

  // Hit test on the final H7: the hash's top 32 bits, as a little-endian number, are H7 with
  // its bytes swapped.
  wire [31:0] top = {c_out[7:0], c_out[15:8], c_out[23:16], c_out[31:24]};
  wire        hit = (ZERO_BITS >= 32) ? (top == 32'd0) : ((top >> (32 - ZERO_BITS)) == 32'd0);
  reg         hit_r;

  // ---- replies: a byte FIFO, FIFO_REPLIES deep (a power of two) ----
  localparam integer FB = 4 * FIFO_REPLIES;
  localparam integer AW = $clog2(FB);
  reg [7:0] fifo [0:FB-1];
  reg [AW-1:0] wr, rd;
  reg [AW:0] used;
  wire      tx_busy;
  reg       tx_send;
  reg [7:0] tx_data;
  wire      push = state == S_CHECK && hit_r && used <= FB - 4;

  always @(posedge clk) begin
    c_start <= 1'b0;
    if (rst) begin
      state <= S_IDLE;
    end else if (job_ready) begin
      mid_r <= midstate;
      tail_r <= {w0, w1, w2};
      nonce <= start_nonce;
      second <= 1'b0;
      c_start <= 1'b1;
      state <= S_HASH1;
    end else begin
      case (state)
        S_HASH1: if (c_done) begin
          second <= 1'b1;
          c_start <= 1'b1;
          state <= S_HASH2;
        end
        S_HASH2: if (c_done) begin
          hit_r <= hit;
          state <= S_CHECK;
        end
        S_CHECK: if (!hit_r || push) begin
          if (nonce == 32'hffffffff) begin
            state <= S_IDLE;  // end of range: silence
          end else begin
            nonce <= nonce + 1'b1;
            second <= 1'b0;
            c_start <= 1'b1;
            state <= S_HASH1;
          end
        end
        default: ;
      endcase
    end
  end

  always @(posedge clk) begin
    tx_send <= 1'b0;
    if (rst) begin
      wr <= 0;
      rd <= 0;
      used <= 0;
    end else begin
      if (push) begin
        fifo[wr] <= nonce[31:24];
        fifo[wr + 1] <= nonce[23:16];
        fifo[wr + 2] <= nonce[15:8];
        fifo[wr + 3] <= nonce[7:0];
        wr <= wr + 4;
      end
      if (!tx_busy && !tx_send && used != 0) begin
        tx_data <= fifo[rd];
        tx_send <= 1'b1;
        rd <= rd + 1;
      end
      used <= used + (push ? 4 : 0) - ((!tx_busy && !tx_send && used != 0) ? 1 : 0);
    end
  end

  uart_tx #(.CLKS_PER_BIT(CLKS_PER_BIT)) tx (
      .clk(clk), .rst(rst), .send(tx_send), .data(tx_data), .tx(uart_tx), .busy(tx_busy));
endmodule
