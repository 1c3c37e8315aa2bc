// SPDX-License-Identifier: GPL-2.0
/*
 * Instantiates rust_binder's trace events (binder_tracepoints.h), with the function Rust
 * calls to emit each one (rust_do_trace_<event>, which tracepoint.h declares and
 * define_trace.h writes when CREATE_RUST_TRACE_POINTS is set).
 *
 * Why C: Rust has no way to define a trace event; see the top of binder_tracepoints.h.
 * With CONFIG_TRACEPOINTS off this file compiles to nothing, and trace.rs calls nothing.
 */

#define CREATE_TRACE_POINTS
#define CREATE_RUST_TRACE_POINTS
#include "binder_tracepoints.h"
