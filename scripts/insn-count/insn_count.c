// SPDX-License-Identifier: GPL-2.0
/*
 * insn_count: a QEMU TCG plugin that counts, for every kernel instruction the guest executes,
 * how many times it ran, in phases the guest marks itself. `make bench`'s sampling profile
 * (tests/bench/src/profile.rs) gets a sample every 4 million instructions and spreads thin
 * over a driver's many short functions; this gives their exact counts.
 *
 * Arguments (-plugin insn_count.so,mark=ADDR,out=FILE): the kernel address whose execution
 * ends a phase (scripts/bench.sh gives `__x64_sys_ni_syscall`'s, which runs when the
 * guest makes a syscall whose number the table skips), and the file the phases are written to: on
 * every mark, "phase N" and then a line "ADDR COUNT" (hex, decimal) for each kernel
 * instruction that ran since the mark before; the counts then start again from zero.
 *
 * The plugin API's header is not installed with Debian's QEMU; the few declarations used
 * are written out below, as the API documents them (QEMU's plugin API version 2 and later).
 * Under `-icount` QEMU runs every vCPU in one host thread, so plain counters suffice.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS };
typedef void (*trans_cb)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*exec_cb)(unsigned int vcpu, void *data);
typedef void (*exit_cb)(qemu_plugin_id_t id, void *data);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, trans_cb cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, exec_cb cb,
                                          enum qemu_plugin_cb_flags flags, void *data);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, exit_cb cb, void *data);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t i);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);

__attribute__((visibility("default"))) int qemu_plugin_version = 2;

/* A translated block of kernel code: its instructions' addresses and how often it ran. */
struct block {
	uint64_t runs;
	size_t n;
	uint64_t addr[];
};

static struct block **blocks;
static size_t nblocks, capblocks;
static uint64_t mark;
static FILE *out;
static unsigned int phase;

/* Per-instruction totals of one phase: open addressing, the address 0 marks a free slot. */
#define SLOTS (1u << 22)
static uint64_t *slot_addr, *slot_count;

static void add(uint64_t addr, uint64_t count)
{
	size_t i = (addr * 0x9e3779b97f4a7c15ull) >> 42;

	while (slot_addr[i] && slot_addr[i] != addr)
		i = (i + 1) & (SLOTS - 1);
	slot_addr[i] = addr;
	slot_count[i] += count;
}

static void end_phase(void)
{
	size_t b, i;

	for (b = 0; b < nblocks; b++) {
		struct block *blk = blocks[b];

		if (!blk->runs)
			continue;
		for (i = 0; i < blk->n; i++)
			add(blk->addr[i], blk->runs);
		blk->runs = 0;
	}
	fprintf(out, "phase %u\n", phase++);
	for (i = 0; i < SLOTS; i++) {
		if (!slot_addr[i])
			continue;
		fprintf(out, "%" PRIx64 " %" PRIu64 "\n", slot_addr[i], slot_count[i]);
		slot_addr[i] = 0;
		slot_count[i] = 0;
	}
	fflush(out);
}

static void ran(unsigned int vcpu, void *data)
{
	((struct block *)data)->runs++;
}

static void marked(unsigned int vcpu, void *data)
{
	end_phase();
}

static void translated(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	uint64_t start = qemu_plugin_tb_vaddr(tb);
	size_t n = qemu_plugin_tb_n_insns(tb), i;
	struct block *blk;

	if (start < 0xffff800000000000ull)
		return;
	blk = calloc(1, sizeof(*blk) + n * sizeof(uint64_t));
	if (!blk)
		abort();
	blk->n = n;
	for (i = 0; i < n; i++)
		blk->addr[i] = qemu_plugin_insn_vaddr(qemu_plugin_tb_get_insn(tb, i));
	if (nblocks == capblocks) {
		capblocks = capblocks ? 2 * capblocks : 4096;
		blocks = realloc(blocks, capblocks * sizeof(*blocks));
		if (!blocks)
			abort();
	}
	blocks[nblocks++] = blk;
	qemu_plugin_register_vcpu_tb_exec_cb(tb, ran, QEMU_PLUGIN_CB_NO_REGS, blk);
	if (start == mark)
		qemu_plugin_register_vcpu_tb_exec_cb(tb, marked, QEMU_PLUGIN_CB_NO_REGS, NULL);
}

static void at_exit(qemu_plugin_id_t id, void *data)
{
	end_phase();
	fclose(out);
}

__attribute__((visibility("default"))) int
qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
	const char *path = NULL;
	int i;

	for (i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "mark=", 5))
			mark = strtoull(argv[i] + 5, NULL, 0);
		else if (!strncmp(argv[i], "out=", 4))
			path = argv[i] + 4;
	}
	if (!mark || !path) {
		fprintf(stderr, "insn_count: needs mark=ADDR and out=FILE\n");
		return -1;
	}
	out = fopen(path, "w");
	slot_addr = calloc(SLOTS, sizeof(uint64_t));
	slot_count = calloc(SLOTS, sizeof(uint64_t));
	if (!out || !slot_addr || !slot_count)
		return -1;
	qemu_plugin_register_vcpu_tb_trans_cb(id, translated);
	qemu_plugin_register_atexit_cb(id, at_exit, NULL);
	return 0;
}
