// SPDX-License-Identifier: GPL-2.0
//
// The demo's calculator interface. rb-calculator and rb-calc-client (tests/demo) speak it by
// hand with binder-client's parcels; the rsbinder programs here use code generated from it.
// add and sumFile are the demo's; takeToken (the second call code) is rsbinder's calculator's
// alone, for the interop stress check (rsb-calc-client --stress).
package rb.demo;

import rb.demo.IToken;

interface ICalculator {
    int add(int a, int b);

    // Answers tag once the service holds token (a handle to the caller's object); with
    // callBack, only if token.tag() answers tag too. The service lets the handle go when the
    // call returns.
    int takeToken(IToken token, int tag, boolean callBack);

    // Reads whitespace-separated integers from numbers (a pipe or a file, from its offset to
    // its end) and answers a new file, a memfd at offset 0, that says what they add up to:
    // "1 + 2 + 3 = 6". The file descriptors go both ways as BINDER_TYPE_FD objects.
    ParcelFileDescriptor sumFile(in ParcelFileDescriptor numbers);
}
