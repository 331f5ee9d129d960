// SPDX-License-Identifier: MIT OR Apache-2.0
// rigworker: one SHA-256 compression (64 rounds) of a 512-bit block onto a 256-bit state,
// RPC rounds per clock (1, 2, 4, 8, 16, 32 or 64: the unrolling), so one compression takes
// 64/RPC cycles after `start`. Written from scratch for rigworker (FIPS 180-4 names: a..h,
// W[t], Σ0 Σ1 σ0 σ1); no code from the GPLv3 Icarus cores.
//
// `start` may be raised at any time, also while busy: the unit then restarts on the new input
// (the Icarus front end relies on this to abandon a job at once).
module sha256_compress #(
    parameter integer RPC = 1
) (
    input  wire         clk,
    input  wire         rst,
    input  wire         start,
    input  wire [255:0] state_in,  // {a, b, c, d, e, f, g, h}, a in [255:224]
    input  wire [511:0] block,     // {W0, ..., W15}, W0 in [511:480]
    output reg          busy,
    output reg          done,      // one-cycle pulse: state_out is valid
    output reg  [255:0] state_out
);
  function automatic [31:0] k_of(input [5:0] i);
    case (i)
      6'd0: k_of = 32'h428a2f98;  6'd1: k_of = 32'h71374491;  6'd2: k_of = 32'hb5c0fbcf;  6'd3: k_of = 32'he9b5dba5;
      6'd4: k_of = 32'h3956c25b;  6'd5: k_of = 32'h59f111f1;  6'd6: k_of = 32'h923f82a4;  6'd7: k_of = 32'hab1c5ed5;
      6'd8: k_of = 32'hd807aa98;  6'd9: k_of = 32'h12835b01;  6'd10: k_of = 32'h243185be; 6'd11: k_of = 32'h550c7dc3;
      6'd12: k_of = 32'h72be5d74; 6'd13: k_of = 32'h80deb1fe; 6'd14: k_of = 32'h9bdc06a7; 6'd15: k_of = 32'hc19bf174;
      6'd16: k_of = 32'he49b69c1; 6'd17: k_of = 32'hefbe4786; 6'd18: k_of = 32'h0fc19dc6; 6'd19: k_of = 32'h240ca1cc;
      6'd20: k_of = 32'h2de92c6f; 6'd21: k_of = 32'h4a7484aa; 6'd22: k_of = 32'h5cb0a9dc; 6'd23: k_of = 32'h76f988da;
      6'd24: k_of = 32'h983e5152; 6'd25: k_of = 32'ha831c66d; 6'd26: k_of = 32'hb00327c8; 6'd27: k_of = 32'hbf597fc7;
      6'd28: k_of = 32'hc6e00bf3; 6'd29: k_of = 32'hd5a79147; 6'd30: k_of = 32'h06ca6351; 6'd31: k_of = 32'h14292967;
      6'd32: k_of = 32'h27b70a85; 6'd33: k_of = 32'h2e1b2138; 6'd34: k_of = 32'h4d2c6dfc; 6'd35: k_of = 32'h53380d13;
      6'd36: k_of = 32'h650a7354; 6'd37: k_of = 32'h766a0abb; 6'd38: k_of = 32'h81c2c92e; 6'd39: k_of = 32'h92722c85;
      6'd40: k_of = 32'ha2bfe8a1; 6'd41: k_of = 32'ha81a664b; 6'd42: k_of = 32'hc24b8b70; 6'd43: k_of = 32'hc76c51a3;
      6'd44: k_of = 32'hd192e819; 6'd45: k_of = 32'hd6990624; 6'd46: k_of = 32'hf40e3585; 6'd47: k_of = 32'h106aa070;
      6'd48: k_of = 32'h19a4c116; 6'd49: k_of = 32'h1e376c08; 6'd50: k_of = 32'h2748774c; 6'd51: k_of = 32'h34b0bcb5;
      6'd52: k_of = 32'h391c0cb3; 6'd53: k_of = 32'h4ed8aa4a; 6'd54: k_of = 32'h5b9cca4f; 6'd55: k_of = 32'h682e6ff3;
      6'd56: k_of = 32'h748f82ee; 6'd57: k_of = 32'h78a5636f; 6'd58: k_of = 32'h84c87814; 6'd59: k_of = 32'h8cc70208;
      6'd60: k_of = 32'h90befffa; 6'd61: k_of = 32'ha4506ceb; 6'd62: k_of = 32'hbef9a3f7; default: k_of = 32'hc67178f2;
    endcase
  endfunction

  function automatic [31:0] bsig0(input [31:0] x);
    bsig0 = {x[1:0], x[31:2]} ^ {x[12:0], x[31:13]} ^ {x[21:0], x[31:22]};
  endfunction
  function automatic [31:0] bsig1(input [31:0] x);
    bsig1 = {x[5:0], x[31:6]} ^ {x[10:0], x[31:11]} ^ {x[24:0], x[31:25]};
  endfunction
  function automatic [31:0] ssig0(input [31:0] x);
    ssig0 = {x[6:0], x[31:7]} ^ {x[17:0], x[31:18]} ^ {3'b000, x[31:3]};
  endfunction
  function automatic [31:0] ssig1(input [31:0] x);
    ssig1 = {x[16:0], x[31:17]} ^ {x[18:0], x[31:19]} ^ {10'b0, x[31:10]};
  endfunction

  localparam [6:0] STEP = RPC;
  reg [255:0] init;
  reg [255:0] st;       // working variables a..h
  reg [511:0] w;        // the schedule window W[t..t+15], W[t] in [511:480]
  reg [6:0]   t;

  // Combinational: RPC rounds from the registered state and window.
  reg [255:0] st_n;
  reg [511:0] w_n;
  reg [31:0]  ta, tb, tc, td, te, tf, tg, th, t1, t2, w0, nw;
  integer r;
  always @(*) begin
    {ta, tb, tc, td, te, tf, tg, th} = st;
    w_n = w;
    for (r = 0; r < RPC; r = r + 1) begin
      w0 = w_n[511:480];
      t1 = th + bsig1(te) + ((te & tf) ^ (~te & tg)) + k_of(t[5:0] + r[5:0]) + w0;
      t2 = bsig0(ta) + ((ta & tb) ^ (ta & tc) ^ (tb & tc));
      th = tg; tg = tf; tf = te; te = td + t1;
      td = tc; tc = tb; tb = ta; ta = t1 + t2;
      // W[t+16] = σ1(W[t+14]) + W[t+9] + σ0(W[t+1]) + W[t]
      nw = ssig1(w_n[63:32]) + w_n[223:192] + ssig0(w_n[479:448]) + w0;
      w_n = {w_n[479:0], nw};
    end
    st_n = {ta, tb, tc, td, te, tf, tg, th};
  end

  always @(posedge clk) begin
    done <= 1'b0;
    if (rst) begin
      busy <= 1'b0;
      t <= 7'd0;
    end else if (start) begin
      init <= state_in;
      st <= state_in;
      w <= block;
      t <= 7'd0;
      busy <= 1'b1;
    end else if (busy) begin
      st <= st_n;
      w <= w_n;
      t <= t + STEP;
      if (t + STEP == 7'd64) begin
        busy <= 1'b0;
        done <= 1'b1;
        state_out <= {init[255:224] + st_n[255:224], init[223:192] + st_n[223:192],
                      init[191:160] + st_n[191:160], init[159:128] + st_n[159:128],
                      init[127:96]  + st_n[127:96],  init[95:64]   + st_n[95:64],
                      init[63:32]   + st_n[63:32],   init[31:0]    + st_n[31:0]};
      end
    end
  end
endmodule
