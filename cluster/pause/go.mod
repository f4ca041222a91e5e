module ffpool.dev/pause

go 1.22
