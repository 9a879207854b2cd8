//! Compile-time behaviour of `#[endpoint]`: every misuse has a spanned error
//! (`ui/fail`, with the expected output beside each case), and generated
//! code compiles in hostile settings (`ui/pass`).
//!
//! Regenerate the expected output with `TRYBUILD=overwrite` and review the
//! diff like code.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("ui/pass/*.rs");
    cases.compile_fail("ui/fail/*.rs");
}
