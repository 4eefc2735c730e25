// PLACEHOLDER until the worker helper lands: keeps the library non-empty.
#include "worker/backend.h"
