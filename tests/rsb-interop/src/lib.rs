// SPDX-License-Identifier: GPL-2.0

//! The demo's calculator interface (`rb.demo.ICalculator`) on rsbinder, generated from
//! `aidl/rb/demo/ICalculator.aidl`.

rsbinder::include_aidl!("calculator", crate::rb::demo::ICalculator::*);

/// The name the rsbinder calculator registers as unless told otherwise.
pub const DEFAULT_NAME: &str = "rsb.calculator";
