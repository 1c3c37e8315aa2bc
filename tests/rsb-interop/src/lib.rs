// SPDX-License-Identifier: GPL-2.0

//! The demo's calculator interface (`rb.demo.ICalculator`) on rsbinder, and the token its
//! `takeToken` takes (`rb.demo.IToken`), generated from `aidl/rb/demo/`; and the files
//! `sumFile` passes both ways.

rsbinder::include_aidl!("calculator");
pub use crate::rb::demo::{ICalculator::*, IToken::*};

/// The name the rsbinder calculator registers as unless told otherwise.
pub const DEFAULT_NAME: &str = "rsb.calculator";

// The files `sumFile` passes, and its answer, are made as the demo's calculator makes them,
// so the two implementations of the interface answer alike.
pub use demo::{calc::sum_text, describe_fd, memfd};
