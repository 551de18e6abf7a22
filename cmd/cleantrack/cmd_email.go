package main

func emailCommands() []command {
	return nil
}
