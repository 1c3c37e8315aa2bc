/* The binder uapi, as userspace sees it after `make headers_install`. */
#include <linux/android/binder.h>
#include <linux/android/binderfs.h>

/* bindgen does not evaluate function-like macros such as _IOWR; an enum makes clang do it. */
enum { RB_BINDER_CTL_ADD = BINDER_CTL_ADD };
