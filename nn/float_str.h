// The project's float formatter for messages lives in autograd/float_str.h (the lowest layer, so that
// autograd/, data/ and everything above can use the same one); this header is kept for nn/ and for
// installed users.
#pragma once

#include "autograd/float_str.h"
