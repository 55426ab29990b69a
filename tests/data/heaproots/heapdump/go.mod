module heapdump

go 1.19
