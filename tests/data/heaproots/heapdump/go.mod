module heapdump

go 1.22
