#!/bin/bash
# http_client.sh — a right HTTP/1.0 client in bash: the request, then the reply until the server's FIN.
echo "uid=$(id -u) cwd=$PWD"
exec 3<>"/dev/tcp/$1/$2"
printf 'GET / HTTP/1.0\r\n\r\n' >&3
head -n 1 <&3
cat <&3 >/dev/null
