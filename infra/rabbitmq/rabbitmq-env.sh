# Environment for rabbitmq-server and rabbitmqctl, read by infra/services.sh
# (sourced with every variable exported) before it starts or stops the broker.
# It keeps every port RabbitMQ opens on loopback. Variables, not a config file,
# because the broker runs as the rabbitmq user, who may not be able to read
# files inside this repository.

# AMQP, the port the lab talks to.
RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
RABBITMQ_NODE_PORT=5672

# epmd, the Erlang port mapper (4369), which the first Erlang node starts.
ERL_EPMD_ADDRESS=127.0.0.1

# Erlang distribution (25672, used by rabbitmqctl) on loopback; and, if anyone
# enables the management or Prometheus plugin, their HTTP listeners too.
RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1} -rabbitmq_management tcp_config [{ip,"127.0.0.1"},{port,15672}] -rabbitmq_prometheus tcp_config [{ip,"127.0.0.1"},{port,15692}]'

# The short-lived Erlang node that rabbitmqctl itself starts.
RABBITMQ_CTL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'
