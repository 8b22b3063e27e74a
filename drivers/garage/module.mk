# drivers/garage: the Garage driver (K2V rows + S3 blobs over HTTP, SigV4).
GARAGE_SRCS = $(sort $(wildcard drivers/garage/*.c))
GARAGE_OBJS = $(GARAGE_SRCS:%.c=$(B)/obj/%.o)
GARAGE_LIBS = $(CURL_LIBS) $(JANSSON_LIBS) $(EXPAT_LIBS) $(OPENSSL_LIBS) $(THREAD_LIBS)

$(B)/obj/drivers/garage/%.o: MOD_CFLAGS = $(CURL_CFLAGS) $(JANSSON_CFLAGS) $(EXPAT_CFLAGS) $(OPENSSL_CFLAGS)

DRIVERS += $(B)/drivers/aerogram_garage.so

$(B)/drivers/aerogram_garage.so: $(GARAGE_OBJS) $(KIT_OBJS)
	@mkdir -p $(@D)
	$(CC) $(DRIVER_LDFLAGS) -o $@ $^ $(GARAGE_LIBS)
