// SPDX-License-Identifier: MIT OR Apache-2.0
// The simulated Icarus board: kernels/rtl/icarus_sha256d.v compiled by Verilator, clocked
// here, its UART pins bridged bit by bit to a pseudo-terminal in raw mode that appears at the
// path given (a symlink to the pty), exactly where a USB-UART's /dev/ttyUSB0 would be.
//
//   sim PATH [--start-nonce N]      serves until SIGINT/SIGTERM, then removes PATH
//
// Line faults for driver tests (the RTL itself is untouched): SIGUSR1 puts a 2-byte fragment
// on the line (a reply cut short), SIGUSR2 a 4-byte reply that is no hit (a garbled one).
//
// The UART runs at CLKS_PER_BIT clocks per bit (a Verilog parameter): bytes cross the pty
// at once, so the board's serial line is never the bottleneck of the simulation.
#include "Vicarus_sha256d.h"
#include "verilated.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <string>
#include <termios.h>
#include <unistd.h>

#ifndef CLKS_PER_BIT
#define CLKS_PER_BIT 8
#endif

static volatile sig_atomic_t stop_requested = 0;
static volatile sig_atomic_t inject_short = 0;
static volatile sig_atomic_t inject_garbled = 0;
static void on_signal(int) { stop_requested = 1; }
static void on_usr1(int) { inject_short = 1; }
static void on_usr2(int) { inject_garbled = 1; }

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH [--start-nonce N]\n", argv[0]);
        return 2;
    }
    std::string link = argv[1];
    unsigned long start_nonce = 0;
    for (int i = 2; i + 1 < argc; i++) {
        if (std::string(argv[i]) == "--start-nonce") start_nonce = strtoul(argv[i + 1], nullptr, 0);
    }
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
        perror("posix_openpt");
        return 1;
    }
    const char* slave_name = ptsname(master);
    // Hold the slave open in raw mode: the pty keeps its settings and does not hang up while
    // the driver closes and reopens it.
    int slave = open(slave_name, O_RDWR | O_NOCTTY);
    if (slave < 0) {
        perror("open slave");
        return 1;
    }
    termios tio;
    tcgetattr(slave, &tio);
    cfmakeraw(&tio);
    tcsetattr(slave, TCSANOW, &tio);
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    unlink(link.c_str());
    if (symlink(slave_name, link.c_str()) != 0) {
        perror("symlink");
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGUSR1, on_usr1);
    signal(SIGUSR2, on_usr2);
    fprintf(stderr, "simulated Icarus board at %s (%s)\n", link.c_str(), slave_name);

    Verilated::commandArgs(1, argv);
    Vicarus_sha256d* top = new Vicarus_sha256d;
    top->start_nonce = (uint32_t)start_nonce;
    top->uart_rx = 1;
    top->rst = 1;
    for (int i = 0; i < 8; i++) {
        top->clk = 0; top->eval();
        top->clk = 1; top->eval();
    }
    top->rst = 0;

    std::deque<uint8_t> to_board;
    // Host -> board serialiser state.
    int rx_bit = -1, rx_clk = 0;
    uint16_t rx_frame = 0;
    // Board -> host deserialiser state.
    int tx_bit = -1, tx_clk = 0;
    uint8_t tx_byte = 0;
    uint64_t cycle = 0;
    // Board bytes sent so far: faults are only injected between whole replies.
    uint64_t reply_bytes = 0;
    while (!stop_requested) {
        if ((cycle & 1023) == 0) {
            uint8_t buf[256];
            ssize_t n = read(master, buf, sizeof buf);
            if (n > 0) to_board.insert(to_board.end(), buf, buf + n);
            // Faults go out between replies (tx idle), as a glitch on the wire would.
            if (tx_bit < 0 && reply_bytes % 4 == 0 && inject_short) {
                inject_short = 0;
                const uint8_t frag[2] = {0xa5, 0x5a};
                while (write(master, frag, 2) < 0 && errno == EAGAIN) usleep(100);
            }
            if (tx_bit < 0 && reply_bytes % 4 == 0 && inject_garbled) {
                inject_garbled = 0;
                const uint8_t junk[4] = {0xde, 0xad, 0xbe, 0xef};
                while (write(master, junk, 4) < 0 && errno == EAGAIN) usleep(100);
            }
            // Idle board, nothing to send, nothing arriving: sleep instead of spinning.
            if (n <= 0 && to_board.empty() && rx_bit < 0 && tx_bit < 0 && !top->hashing) usleep(1000);
        }
        // Drive the board's RX line: start bit, 8 data bits LSB first, stop bit.
        if (rx_bit < 0 && !to_board.empty()) {
            rx_frame = (uint16_t)((1u << 9) | ((uint16_t)to_board.front() << 1));
            to_board.pop_front();
            rx_bit = 0;
            rx_clk = 0;
        }
        if (rx_bit >= 0) {
            top->uart_rx = (rx_frame >> rx_bit) & 1;
            if (++rx_clk == CLKS_PER_BIT) {
                rx_clk = 0;
                if (++rx_bit == 10) rx_bit = -1;
            }
        } else {
            top->uart_rx = 1;
        }
        top->clk = 0; top->eval();
        top->clk = 1; top->eval();
        cycle++;
        // Sample the board's TX line in the middle of each bit.
        if (tx_bit < 0) {
            if (!top->uart_tx) { tx_bit = 0; tx_clk = 0; }
        } else if (++tx_clk == (tx_bit == 0 ? CLKS_PER_BIT / 2 : CLKS_PER_BIT)) {
            tx_clk = 0;
            int v = top->uart_tx;
            if (tx_bit >= 1 && tx_bit <= 8) tx_byte = (uint8_t)((tx_byte >> 1) | (v << 7));
            if (tx_bit == 9) {
                if (v) {
                    while (write(master, &tx_byte, 1) < 0 && errno == EAGAIN) usleep(100);
                    reply_bytes++;
                }
                tx_bit = -1;
            } else {
                tx_bit++;
            }
        }
    }
    unlink(link.c_str());
    top->final();
    delete top;
    return 0;
}
