// SPDX-License-Identifier: GPL-2.0

//! Generates the rsbinder bindings of the demo's calculator interface and of the token it
//! takes.

use std::path::PathBuf;

fn main() {
    let sources = ["aidl/rb/demo/ICalculator.aidl", "aidl/rb/demo/IToken.aidl"];
    let mut builder = rsbinder_aidl::Builder::new().include_dir(PathBuf::from("aidl"));
    for source in sources {
        println!("cargo:rerun-if-changed={source}");
        builder = builder.source(PathBuf::from(source));
    }
    if let Err(err) = builder.output(PathBuf::from("calculator.rs")).generate() {
        eprintln!("{:?}", miette::Report::new(err));
        std::process::exit(1);
    }
}
