"""capmon's composition root: the command line, the role table, the demo and the replay server."""
