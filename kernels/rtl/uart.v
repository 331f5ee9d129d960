// SPDX-License-Identifier: MIT OR Apache-2.0
// rigworker: 8N1 UART receiver and transmitter, CLKS_PER_BIT clocks per bit (a board at
// 115200 baud from a 100 MHz clock uses 868; the simulation uses a few).
module uart_rx #(
    parameter integer CLKS_PER_BIT = 8
) (
    input  wire       clk,
    input  wire       rst,
    input  wire       rx,
    output reg        valid,   // one-cycle pulse with `data`
    output reg  [7:0] data
);
  localparam integer W = $clog2(CLKS_PER_BIT * 2 + 1);
  reg [W-1:0] cnt;
  reg [3:0]   bitn;
  reg         active;
  reg         rx_q, rx_s;  // two flops: the line comes from another clock domain on a board
  always @(posedge clk) begin
    rx_q <= rx;
    rx_s <= rx_q;
    valid <= 1'b0;
    if (rst) begin
      active <= 1'b0;
    end else if (!active) begin
      if (!rx_s) begin  // start bit: sample mid-bit from here on
        active <= 1'b1;
        cnt <= CLKS_PER_BIT / 2;
        bitn <= 4'd0;
      end
    end else if (cnt != 0) begin
      cnt <= cnt - 1'b1;
    end else begin
      cnt <= CLKS_PER_BIT - 1;
      if (bitn == 4'd0) begin
        if (rx_s) active <= 1'b0;  // a glitch, not a start bit
        bitn <= 4'd1;
      end else if (bitn <= 4'd8) begin
        data <= {rx_s, data[7:1]};
        bitn <= bitn + 1'b1;
      end else begin
        active <= 1'b0;
        if (rx_s) valid <= 1'b1;   // stop bit present: a byte (else a framing error: dropped)
      end
    end
  end
endmodule

module uart_tx #(
    parameter integer CLKS_PER_BIT = 8
) (
    input  wire       clk,
    input  wire       rst,
    input  wire       send,    // with `data`, when !busy
    input  wire [7:0] data,
    output reg        tx,
    output wire       busy
);
  localparam integer W = $clog2(CLKS_PER_BIT + 1);
  reg [W-1:0] cnt;
  reg [3:0]   bitn;
  reg [9:0]   shift;
  reg         active;
  assign busy = active;
  always @(posedge clk) begin
    if (rst) begin
      active <= 1'b0;
      tx <= 1'b1;
    end else if (!active) begin
      tx <= 1'b1;
      if (send) begin
        shift <= {1'b1, data, 1'b0};  // stop, data LSB first, start
        active <= 1'b1;
        bitn <= 4'd0;
        cnt <= CLKS_PER_BIT - 1;
        tx <= 1'b0;
      end
    end else if (cnt != 0) begin
      cnt <= cnt - 1'b1;
    end else begin
      cnt <= CLKS_PER_BIT - 1;
      if (bitn == 4'd9) begin
        active <= 1'b0;
        tx <= 1'b1;
      end else begin
        bitn <= bitn + 1'b1;
        tx <= shift[bitn + 1];
      end
    end
  end
endmodule
