// SPDX-License-Identifier: GPL-2.0

//! Generates the rsbinder bindings of the demo's calculator interface.

use std::path::PathBuf;

fn main() {
    let source = "aidl/rb/demo/ICalculator.aidl";
    println!("cargo:rerun-if-changed={source}");
    if let Err(err) = rsbinder_aidl::Builder::new()
        .source(PathBuf::from(source))
        .output(PathBuf::from("calculator.rs"))
        .generate()
    {
        eprintln!("{:?}", miette::Report::new(err));
        std::process::exit(1);
    }
}
