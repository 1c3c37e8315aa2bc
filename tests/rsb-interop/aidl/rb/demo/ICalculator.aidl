// SPDX-License-Identifier: GPL-2.0
//
// The demo's calculator interface. rb-calculator and rb-calc-client (tests/demo) speak it by
// hand with binder-client's parcels; the rsbinder programs here use code generated from it.
package rb.demo;

interface ICalculator {
    int add(int a, int b);
}
