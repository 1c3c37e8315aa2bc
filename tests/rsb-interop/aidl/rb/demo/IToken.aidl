// SPDX-License-Identifier: GPL-2.0
//
// A local object a client makes for one call to ICalculator.takeToken: the service gets it
// as a handle and may call it back before it answers.
package rb.demo;

interface IToken {
    // The number the client gave this token.
    int tag();
}
