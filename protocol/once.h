/* once.h - a value made by the first caller, from any thread, and shared
 * by every caller after it (a process-wide cache, a locale).
 *
 * pthread_once calls a function without arguments, so each such value needs
 * its own variable, flag and init function: ONCE_VALUE writes the three and
 * the getter. `scope` is `static` or empty (a getter declared in a header);
 * `make` is the expression that makes the value, evaluated once.
 */
#ifndef AG_PROTOCOL_ONCE_H
#define AG_PROTOCOL_ONCE_H

#include <pthread.h>

#define ONCE_VALUE(scope, type, getter, make)                      \
	static type getter##_value;                                \
	static pthread_once_t getter##_once = PTHREAD_ONCE_INIT;   \
	static void getter##_init(void)                            \
	{                                                          \
		getter##_value = (make);                           \
	}                                                          \
	scope type getter(void)                                    \
	{                                                          \
		pthread_once(&getter##_once, getter##_init);       \
		return getter##_value;                             \
	}

#endif
