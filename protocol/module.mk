# protocol/: pure code, no I/O. Everything here goes into one static library
# that the host, the tests and the fuzzers link.
PROTOCOL_SRCS = $(sort $(wildcard protocol/*.c))
PROTOCOL_OBJS = $(PROTOCOL_SRCS:%.c=$(B)/obj/%.o)
PROTOCOL_LIB = $(B)/libagprotocol.a

$(PROTOCOL_LIB): $(PROTOCOL_OBJS)

all: $(PROTOCOL_LIB)
