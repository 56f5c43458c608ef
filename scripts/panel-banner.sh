# Sourced by `make run` once Asterisk is up: tells the operator where the panel is and how to log in.
host="${CC_HTTP_HOST:-127.0.0.1}"; port="${CC_HTTP_PORT:-8080}"
data_dir="${CC_DATA_DIR:-$PWD/var}"
echo
echo "================================================================"
echo " 居家和社区养老服务智慧信息平台 is starting"
echo " Panel:       http://${host}:${port}/"
echo " Health:      http://${host}:${port}/healthz"
echo " Log in as:   admin, with the password printed above by 'demo seed'"
echo "              (or CC_ADMIN_PASSWORD if you set it); all demo credentials"
echo "              are in ${data_dir}/demo-credentials.txt"
echo " SIP:         ${CC_SIP_BIND:-127.0.0.1:5060} UDP (register demo-1001 with its password)"
echo " Stop:        Ctrl-C, then '.venv/bin/callcenter asterisk stop'"
echo "================================================================"
