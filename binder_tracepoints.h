/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The binder trace events of rust_binder, in trace system "binder".
 *
 * Why C: a trace event is made by the TRACE_EVENT() macros, which exist only in C, and the
 * kernel crate's declare_trace! can only reach tracepoints that the kernel's own bindings
 * know, which a module's are not. So the events are declared here, and nothing else is:
 * each event takes plain integers (no driver structures cross the language boundary).
 * binder_tracepoints.c instantiates them, together with one rust_do_trace_<event>()
 * function per event that Rust calls after it has tested the event's static key itself
 * (see trace.rs), so a disabled event costs a not-taken branch.
 *
 * The event names, the field names and types, and the meaning of each field are those of
 * the C driver's events, so that tools reading the binder events (systrace, perfetto) read
 * these the same way.
 */

#undef TRACE_SYSTEM
#define TRACE_SYSTEM binder

#if !defined(_RUST_BINDER_TRACEPOINTS_H) || defined(TRACE_HEADER_MULTI_READ)
#define _RUST_BINDER_TRACEPOINTS_H

#include <linux/tracepoint.h>
#include <uapi/linux/android/binder.h>

/* An ioctl starts: its command and argument. */
TRACE_EVENT(binder_ioctl,
	TP_PROTO(unsigned int cmd, unsigned long arg),
	TP_ARGS(cmd, arg),
	TP_STRUCT__entry(
		__field(unsigned int, cmd)
		__field(unsigned long, arg)
	),
	TP_fast_assign(
		__entry->cmd = cmd;
		__entry->arg = arg;
	),
	TP_printk("cmd=0x%x arg=0x%lx", __entry->cmd, __entry->arg)
);

/* The end of an ioctl, or of one half of BINDER_WRITE_READ: 0 or a negative errno. */
DECLARE_EVENT_CLASS(rust_binder_ret,
	TP_PROTO(int ret),
	TP_ARGS(ret),
	TP_STRUCT__entry(
		__field(int, ret)
	),
	TP_fast_assign(
		__entry->ret = ret;
	),
	TP_printk("ret=%d", __entry->ret)
);

DEFINE_EVENT(rust_binder_ret, binder_ioctl_done, TP_PROTO(int ret), TP_ARGS(ret));
DEFINE_EVENT(rust_binder_ret, binder_write_done, TP_PROTO(int ret), TP_ARGS(ret));
DEFINE_EVENT(rust_binder_ret, binder_read_done, TP_PROTO(int ret), TP_ARGS(ret));

/*
 * A read is about to wait: whether it takes the process's work, whether the thread has
 * calls on its stack, and whether its own todo list has work.
 */
TRACE_EVENT(binder_wait_for_work,
	TP_PROTO(bool proc_work, bool transaction_stack, bool thread_todo),
	TP_ARGS(proc_work, transaction_stack, thread_todo),
	TP_STRUCT__entry(
		__field(bool, proc_work)
		__field(bool, transaction_stack)
		__field(bool, thread_todo)
	),
	TP_fast_assign(
		__entry->proc_work = proc_work;
		__entry->transaction_stack = transaction_stack;
		__entry->thread_todo = thread_todo;
	),
	TP_printk("proc_work=%d transaction_stack=%d thread_todo=%d",
		  __entry->proc_work, __entry->transaction_stack, __entry->thread_todo)
);

/*
 * A transaction object is freed: who sent it and who received it (the thread 0 when no
 * thread was chosen). The text shows the code after "flags=" and the flags after "code=":
 * the C driver's text does, and text parsers of its traces expect it; the fields are right.
 */
TRACE_EVENT(binder_txn_latency_free,
	TP_PROTO(int debug_id, int from_proc, int from_thread, int to_proc, int to_thread,
		 unsigned int code, unsigned int flags),
	TP_ARGS(debug_id, from_proc, from_thread, to_proc, to_thread, code, flags),
	TP_STRUCT__entry(
		__field(int, debug_id)
		__field(int, from_proc)
		__field(int, from_thread)
		__field(int, to_proc)
		__field(int, to_thread)
		__field(unsigned int, code)
		__field(unsigned int, flags)
	),
	TP_fast_assign(
		__entry->debug_id = debug_id;
		__entry->from_proc = from_proc;
		__entry->from_thread = from_thread;
		__entry->to_proc = to_proc;
		__entry->to_thread = to_thread;
		__entry->code = code;
		__entry->flags = flags;
	),
	TP_printk("transaction=%d from %d:%d to %d:%d flags=0x%x code=0x%x",
		  __entry->debug_id, __entry->from_proc, __entry->from_thread,
		  __entry->to_proc, __entry->to_thread, __entry->code, __entry->flags)
);

/* A transaction or reply is being sent, before its buffer is allocated. */
TRACE_EVENT(binder_transaction,
	TP_PROTO(int debug_id, int target_node, int to_proc, int to_thread, int reply,
		 unsigned int code, unsigned int flags),
	TP_ARGS(debug_id, target_node, to_proc, to_thread, reply, code, flags),
	TP_STRUCT__entry(
		__field(int, debug_id)
		__field(int, target_node)
		__field(int, to_proc)
		__field(int, to_thread)
		__field(int, reply)
		__field(unsigned int, code)
		__field(unsigned int, flags)
	),
	TP_fast_assign(
		__entry->debug_id = debug_id;
		__entry->target_node = target_node;
		__entry->to_proc = to_proc;
		__entry->to_thread = to_thread;
		__entry->reply = reply;
		__entry->code = code;
		__entry->flags = flags;
	),
	TP_printk("transaction=%d dest_node=%d dest_proc=%d dest_thread=%d reply=%d flags=0x%x code=0x%x",
		  __entry->debug_id, __entry->target_node, __entry->to_proc,
		  __entry->to_thread, __entry->reply, __entry->flags, __entry->code)
);

/* A reader got the transaction (its BR_TRANSACTION or BR_REPLY is written). */
TRACE_EVENT(binder_transaction_received,
	TP_PROTO(int debug_id),
	TP_ARGS(debug_id),
	TP_STRUCT__entry(
		__field(int, debug_id)
	),
	TP_fast_assign(
		__entry->debug_id = debug_id;
	),
	TP_printk("transaction=%d", __entry->debug_id)
);

/* A local binder object became a handle in the receiver. */
TRACE_EVENT(binder_transaction_node_to_ref,
	TP_PROTO(int debug_id, int node_debug_id, binder_uintptr_t node_ptr,
		 int ref_debug_id, uint32_t ref_desc),
	TP_ARGS(debug_id, node_debug_id, node_ptr, ref_debug_id, ref_desc),
	TP_STRUCT__entry(
		__field(int, debug_id)
		__field(int, node_debug_id)
		__field(binder_uintptr_t, node_ptr)
		__field(int, ref_debug_id)
		__field(uint32_t, ref_desc)
	),
	TP_fast_assign(
		__entry->debug_id = debug_id;
		__entry->node_debug_id = node_debug_id;
		__entry->node_ptr = node_ptr;
		__entry->ref_debug_id = ref_debug_id;
		__entry->ref_desc = ref_desc;
	),
	TP_printk("transaction=%d node=%d src_ptr=0x%016llx ==> dest_ref=%d dest_desc=%d",
		  __entry->debug_id, __entry->node_debug_id, (u64)__entry->node_ptr,
		  __entry->ref_debug_id, __entry->ref_desc)
);

/* A handle went back to the process owning its node: the receiver gets the node itself. */
TRACE_EVENT(binder_transaction_ref_to_node,
	TP_PROTO(int debug_id, int ref_debug_id, uint32_t ref_desc, int node_debug_id,
		 binder_uintptr_t node_ptr),
	TP_ARGS(debug_id, ref_debug_id, ref_desc, node_debug_id, node_ptr),
	TP_STRUCT__entry(
		__field(int, debug_id)
		__field(int, ref_debug_id)
		__field(uint32_t, ref_desc)
		__field(int, node_debug_id)
		__field(binder_uintptr_t, node_ptr)
	),
	TP_fast_assign(
		__entry->debug_id = debug_id;
		__entry->ref_debug_id = ref_debug_id;
		__entry->ref_desc = ref_desc;
		__entry->node_debug_id = node_debug_id;
		__entry->node_ptr = node_ptr;
	),
	TP_printk("transaction=%d node=%d src_ref=%d src_desc=%d ==> dest_ptr=0x%016llx",
		  __entry->debug_id, __entry->node_debug_id, __entry->ref_debug_id,
		  __entry->ref_desc, (u64)__entry->node_ptr)
);

/* A handle went to a third process: the receiver gets its own handle on the same node. */
TRACE_EVENT(binder_transaction_ref_to_ref,
	TP_PROTO(int debug_id, int node_debug_id, int src_ref_debug_id, uint32_t src_ref_desc,
		 int dest_ref_debug_id, uint32_t dest_ref_desc),
	TP_ARGS(debug_id, node_debug_id, src_ref_debug_id, src_ref_desc, dest_ref_debug_id,
		dest_ref_desc),
	TP_STRUCT__entry(
		__field(int, debug_id)
		__field(int, node_debug_id)
		__field(int, src_ref_debug_id)
		__field(uint32_t, src_ref_desc)
		__field(int, dest_ref_debug_id)
		__field(uint32_t, dest_ref_desc)
	),
	TP_fast_assign(
		__entry->debug_id = debug_id;
		__entry->node_debug_id = node_debug_id;
		__entry->src_ref_debug_id = src_ref_debug_id;
		__entry->src_ref_desc = src_ref_desc;
		__entry->dest_ref_debug_id = dest_ref_debug_id;
		__entry->dest_ref_desc = dest_ref_desc;
	),
	TP_printk("transaction=%d node=%d src_ref=%d src_desc=%d ==> dest_ref=%d dest_desc=%d",
		  __entry->debug_id, __entry->node_debug_id, __entry->src_ref_debug_id,
		  __entry->src_ref_desc, __entry->dest_ref_debug_id, __entry->dest_ref_desc)
);

/* File descriptors: the sender's fd taken at the given buffer offset, or the reader's new fd. */
DECLARE_EVENT_CLASS(rust_binder_fd,
	TP_PROTO(int debug_id, int fd, size_t offset),
	TP_ARGS(debug_id, fd, offset),
	TP_STRUCT__entry(
		__field(int, debug_id)
		__field(int, fd)
		__field(size_t, offset)
	),
	TP_fast_assign(
		__entry->debug_id = debug_id;
		__entry->fd = fd;
		__entry->offset = offset;
	),
	TP_printk("transaction=%d fd=%d offset=%zu", __entry->debug_id, __entry->fd,
		  __entry->offset)
);

DEFINE_EVENT_PRINT(rust_binder_fd, binder_transaction_fd_send,
	TP_PROTO(int debug_id, int fd, size_t offset),
	TP_ARGS(debug_id, fd, offset),
	TP_printk("transaction=%d src_fd=%d offset=%zu", __entry->debug_id, __entry->fd,
		  __entry->offset));

DEFINE_EVENT_PRINT(rust_binder_fd, binder_transaction_fd_recv,
	TP_PROTO(int debug_id, int fd, size_t offset),
	TP_ARGS(debug_id, fd, offset),
	TP_printk("transaction=%d dest_fd=%d offset=%zu", __entry->debug_id, __entry->fd,
		  __entry->offset));

/* A transaction's buffer was allocated. */
DECLARE_EVENT_CLASS(rust_binder_buffer,
	TP_PROTO(int debug_id, size_t data_size, size_t offsets_size, size_t extra_buffers_size),
	TP_ARGS(debug_id, data_size, offsets_size, extra_buffers_size),
	TP_STRUCT__entry(
		__field(int, debug_id)
		__field(size_t, data_size)
		__field(size_t, offsets_size)
		__field(size_t, extra_buffers_size)
	),
	TP_fast_assign(
		__entry->debug_id = debug_id;
		__entry->data_size = data_size;
		__entry->offsets_size = offsets_size;
		__entry->extra_buffers_size = extra_buffers_size;
	),
	TP_printk("transaction=%d data_size=%zd offsets_size=%zd extra_buffers_size=%zd",
		  __entry->debug_id, __entry->data_size, __entry->offsets_size,
		  __entry->extra_buffers_size)
);

DEFINE_EVENT(rust_binder_buffer, binder_transaction_alloc_buf,
	TP_PROTO(int debug_id, size_t data_size, size_t offsets_size, size_t extra_buffers_size),
	TP_ARGS(debug_id, data_size, offsets_size, extra_buffers_size));

/* The names of the commands and returns, for the text form of the two events below. */
#define RUST_BINDER_BC_NAMES						\
	{ BC_TRANSACTION, "BC_TRANSACTION" },				\
	{ BC_REPLY, "BC_REPLY" },					\
	{ BC_ACQUIRE_RESULT, "BC_ACQUIRE_RESULT" },			\
	{ BC_FREE_BUFFER, "BC_FREE_BUFFER" },				\
	{ BC_INCREFS, "BC_INCREFS" },					\
	{ BC_ACQUIRE, "BC_ACQUIRE" },					\
	{ BC_RELEASE, "BC_RELEASE" },					\
	{ BC_DECREFS, "BC_DECREFS" },					\
	{ BC_INCREFS_DONE, "BC_INCREFS_DONE" },				\
	{ BC_ACQUIRE_DONE, "BC_ACQUIRE_DONE" },				\
	{ BC_ATTEMPT_ACQUIRE, "BC_ATTEMPT_ACQUIRE" },			\
	{ BC_REGISTER_LOOPER, "BC_REGISTER_LOOPER" },			\
	{ BC_ENTER_LOOPER, "BC_ENTER_LOOPER" },				\
	{ BC_EXIT_LOOPER, "BC_EXIT_LOOPER" },				\
	{ BC_REQUEST_DEATH_NOTIFICATION, "BC_REQUEST_DEATH_NOTIFICATION" }, \
	{ BC_CLEAR_DEATH_NOTIFICATION, "BC_CLEAR_DEATH_NOTIFICATION" },	\
	{ BC_DEAD_BINDER_DONE, "BC_DEAD_BINDER_DONE" },			\
	{ BC_TRANSACTION_SG, "BC_TRANSACTION_SG" },			\
	{ BC_REPLY_SG, "BC_REPLY_SG" },					\
	{ BC_REQUEST_FREEZE_NOTIFICATION, "BC_REQUEST_FREEZE_NOTIFICATION" }, \
	{ BC_CLEAR_FREEZE_NOTIFICATION, "BC_CLEAR_FREEZE_NOTIFICATION" }, \
	{ BC_FREEZE_NOTIFICATION_DONE, "BC_FREEZE_NOTIFICATION_DONE" }

#define RUST_BINDER_BR_NAMES						\
	{ BR_ERROR, "BR_ERROR" },					\
	{ BR_OK, "BR_OK" },						\
	{ BR_TRANSACTION, "BR_TRANSACTION" },				\
	{ BR_REPLY, "BR_REPLY" },					\
	{ BR_ACQUIRE_RESULT, "BR_ACQUIRE_RESULT" },			\
	{ BR_DEAD_REPLY, "BR_DEAD_REPLY" },				\
	{ BR_TRANSACTION_COMPLETE, "BR_TRANSACTION_COMPLETE" },		\
	{ BR_INCREFS, "BR_INCREFS" },					\
	{ BR_ACQUIRE, "BR_ACQUIRE" },					\
	{ BR_RELEASE, "BR_RELEASE" },					\
	{ BR_DECREFS, "BR_DECREFS" },					\
	{ BR_ATTEMPT_ACQUIRE, "BR_ATTEMPT_ACQUIRE" },			\
	{ BR_NOOP, "BR_NOOP" },						\
	{ BR_SPAWN_LOOPER, "BR_SPAWN_LOOPER" },				\
	{ BR_FINISHED, "BR_FINISHED" },					\
	{ BR_DEAD_BINDER, "BR_DEAD_BINDER" },				\
	{ BR_CLEAR_DEATH_NOTIFICATION_DONE, "BR_CLEAR_DEATH_NOTIFICATION_DONE" }, \
	{ BR_FAILED_REPLY, "BR_FAILED_REPLY" },				\
	{ BR_FROZEN_REPLY, "BR_FROZEN_REPLY" },				\
	{ BR_ONEWAY_SPAM_SUSPECT, "BR_ONEWAY_SPAM_SUSPECT" },		\
	{ BR_TRANSACTION_PENDING_FROZEN, "BR_TRANSACTION_PENDING_FROZEN" }, \
	{ BR_FROZEN_BINDER, "BR_FROZEN_BINDER" },			\
	{ BR_CLEAR_FREEZE_NOTIFICATION_DONE, "BR_CLEAR_FREEZE_NOTIFICATION_DONE" }, \
	{ BR_TRANSACTION_SEC_CTX, "BR_TRANSACTION_SEC_CTX" }

/* A command (BC_*) read from the write buffer, before it is carried out. */
TRACE_EVENT(binder_command,
	TP_PROTO(uint32_t cmd),
	TP_ARGS(cmd),
	TP_STRUCT__entry(
		__field(uint32_t, cmd)
	),
	TP_fast_assign(
		__entry->cmd = cmd;
	),
	TP_printk("cmd=0x%x %s", __entry->cmd,
		  __print_symbolic(__entry->cmd, RUST_BINDER_BC_NAMES))
);

/* A return (BR_*) written to the read buffer. */
TRACE_EVENT(binder_return,
	TP_PROTO(uint32_t cmd),
	TP_ARGS(cmd),
	TP_STRUCT__entry(
		__field(uint32_t, cmd)
	),
	TP_fast_assign(
		__entry->cmd = cmd;
	),
	TP_printk("cmd=0x%x %s", __entry->cmd,
		  __print_symbolic(__entry->cmd, RUST_BINDER_BR_NAMES))
);

/* A netlink transaction report is sent (to at least one listener). */
TRACE_EVENT(binder_netlink_report,
	TP_PROTO(const char *context, u32 error, int from_pid, int from_tid, int to_pid,
		 int to_tid, bool is_reply, unsigned int flags, unsigned int code,
		 size_t data_size),
	TP_ARGS(context, error, from_pid, from_tid, to_pid, to_tid, is_reply, flags, code,
		data_size),
	TP_STRUCT__entry(
		__field(const char *, context)
		__field(u32, error)
		__field(int, from_pid)
		__field(int, from_tid)
		__field(int, to_pid)
		__field(int, to_tid)
		__field(bool, is_reply)
		__field(unsigned int, flags)
		__field(unsigned int, code)
		__field(size_t, data_size)
	),
	TP_fast_assign(
		__entry->context = context;
		__entry->error = error;
		__entry->from_pid = from_pid;
		__entry->from_tid = from_tid;
		__entry->to_pid = to_pid;
		__entry->to_tid = to_tid;
		__entry->is_reply = is_reply;
		__entry->flags = flags;
		__entry->code = code;
		__entry->data_size = data_size;
	),
	TP_printk("from %d:%d to %d:%d context=%s error=%d is_reply=%d flags=0x%x code=0x%x size=%zu",
		  __entry->from_pid, __entry->from_tid, __entry->to_pid, __entry->to_tid,
		  __entry->context, __entry->error, __entry->is_reply, __entry->flags,
		  __entry->code, __entry->data_size)
);

#endif /* _RUST_BINDER_TRACEPOINTS_H */

/* Outside the guard: define_trace.h reads this header again to instantiate the events. */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE binder_tracepoints
#include <trace/define_trace.h>
