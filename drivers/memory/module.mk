# drivers/memory: the reference driver, everything in this process's memory.
MEMORY_DRIVER_SRCS = $(sort $(wildcard drivers/memory/*.c))
MEMORY_DRIVER_OBJS = $(MEMORY_DRIVER_SRCS:%.c=$(B)/obj/%.o)

DRIVERS += $(B)/drivers/aerogram_memory.so

$(B)/drivers/aerogram_memory.so: $(MEMORY_DRIVER_OBJS) $(KIT_OBJS)
	@mkdir -p $(@D)
	$(CC) $(DRIVER_LDFLAGS) -o $@ $^ $(THREAD_LIBS)
