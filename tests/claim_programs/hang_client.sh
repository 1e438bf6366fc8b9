#!/bin/bash
# hang_client.sh — connects, sends nothing, and waits forever for a reply that never comes.
echo "connecting to $1 port $2"
exec 3<>"/dev/tcp/$1/$2"
read -r line <&3
