/* list.h - the two intrusive lists the daemon keeps everywhere: a FIFO
 * queue of jobs, and the list in order of use that a cache evicts from.
 *
 * The macros work on any struct with the named pointer fields, all of the
 * element's own type (C has no generics), so the users keep typed
 * pointers. Arguments are evaluated more than once: pass plain variables.
 * They depend on nothing; the engine may use them too.
 */
#ifndef AG_PROTOCOL_LIST_H
#define AG_PROTOCOL_LIST_H

#include <stddef.h>

/* A queue is a `head` and a `tail` pointer (given as lvalues); an element
 * has a `next` pointer. QUEUE_PUSH appends `e`. */
#define QUEUE_PUSH(head, tail, e)                        \
	do {                                             \
		(e)->next = NULL;                        \
		if ((tail) != NULL)                      \
			(tail)->next = (e);              \
		else                                     \
			(head) = (e);                    \
		(tail) = (e);                            \
	} while (0)

/* Takes the whole queue into `first` (NULL when empty), leaving it empty. */
#define QUEUE_TAKE_ALL(head, tail, first)                \
	do {                                             \
		(first) = (head);                        \
		(head) = (tail) = NULL;                  \
	} while (0)

/* Takes the first element (the queue is not empty) into `e`. */
#define QUEUE_POP(head, tail, e)                         \
	do {                                             \
		(e) = (head);                            \
		(head) = (e)->next;                      \
		if ((head) == NULL)                      \
			(tail) = NULL;                   \
	} while (0)

/* A doubly linked list is a `head` pointer (an lvalue); an element has
 * `prev` and `next`. DLIST_INSERT_HEAD puts `e` first. */
#define DLIST_INSERT_HEAD(head, e)                       \
	do {                                             \
		(e)->prev = NULL;                        \
		(e)->next = (head);                      \
		if ((head) != NULL)                      \
			(head)->prev = (e);              \
		(head) = (e);                            \
	} while (0)

/* Takes `e` out of the list. */
#define DLIST_REMOVE(head, e)                            \
	do {                                             \
		if ((e)->prev != NULL)                   \
			(e)->prev->next = (e)->next;     \
		else                                     \
			(head) = (e)->next;              \
		if ((e)->next != NULL)                   \
			(e)->next->prev = (e)->prev;     \
	} while (0)

/* A use-ordered list has `newest` and `oldest` pointers, an element
 * `newer` and `older`. */

/* Takes element `e` out of `list` (a pointer to the list struct). */
#define LRU_UNLINK(list, e)                              \
	do {                                             \
		if ((e)->newer)                          \
			(e)->newer->older = (e)->older;  \
		else                                     \
			(list)->newest = (e)->older;     \
		if ((e)->older)                          \
			(e)->older->newer = (e)->newer;  \
		else                                     \
			(list)->oldest = (e)->newer;     \
		(e)->newer = (e)->older = NULL;          \
	} while (0)

/* Puts element `e`, in no list, at the newest end of `list`. */
#define LRU_PUSH_NEWEST(list, e)                         \
	do {                                             \
		(e)->older = (list)->newest;             \
		(e)->newer = NULL;                       \
		if ((list)->newest)                      \
			(list)->newest->newer = (e);     \
		(list)->newest = (e);                    \
		if ((list)->oldest == NULL)              \
			(list)->oldest = (e);            \
	} while (0)

#endif
