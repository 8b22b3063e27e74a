# host/mail/: the mail engine, a static library the daemon and the tests link.
MAIL_SRCS = $(wildcard host/mail/*.c)
MAIL_OBJS = $(patsubst %.c,$(B)/obj/%.o,$(MAIL_SRCS))
MAIL_LIB = $(B)/libagmail.a

$(MAIL_LIB): $(MAIL_OBJS)

all: $(MAIL_LIB)
